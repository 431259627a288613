#!/usr/bin/env bash
# The real footage the real-data tests and benchmarks use, fetched when the shared data beside the
# project is there: PETS 2009 S2.L1 (OpenCV's vtest.avi, from Debian's opencv-doc package, by the
# data folder's own get_video.sh into ~/.cache/pets09). Never fails: without it those tests skip.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
get="$root/../shared/data/pets09-dev/get_video.sh"
[ -f "$HOME/.cache/pets09/vtest.avi" ] && exit 0
[ -f "$get" ] || exit 0
command -v apt-get >/dev/null 2>&1 || { echo "[data] no apt-get: real-footage tests will skip" >&2; exit 0; }
echo "[data] fetching the PETS 2009 footage (Debian opencv-doc) for the real-footage tests" >&2
bash "$get" >/dev/null 2>&1 || echo "[data] could not fetch vtest.avi: real-footage tests will skip" >&2
exit 0
