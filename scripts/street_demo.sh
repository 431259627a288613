#!/usr/bin/env bash
# The street demo: real pedestrians (PETS 2009 S2.L1, OpenCV's vtest.avi, 795 frames, fetched
# once into ~/.cache/vis-pipeline by scripts/get_street_video.sh) -> the shipped people
# model every 3rd frame -> optical-flow propagation + tracking -> JSONL + overlay video + Kafka
# (an embedded tansu broker on loopback), then the topic is read back and summarised.
# Outputs: out/street/vtest.jsonl and out/street/vtest.overlay.mp4. Extra arguments go to
# run_pipeline.py (e.g. --set keyframes.interval=1).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
video="$(bash "$root/scripts/get_street_video.sh")" || exit 1
bash "$root/scripts/bootstrap.sh"
cd "$root"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
exec "$root/.venv/bin/python" -m tools.demo --config configs/street.yaml --source "$video" "$@"
