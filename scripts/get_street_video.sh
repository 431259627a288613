#!/usr/bin/env bash
# The street demo's footage: OpenCV's sample vtest.avi (PETS 2009 S2.L1 view 1: pedestrians,
# 768x576, 795 frames; research use), taken from Debian's opencv-doc package with
# `apt-get download` + `dpkg-deb -x` (no root needed). Prints the file's path.
# usage: get_street_video.sh [DEST_DIR]   (default: ~/.cache/vis-pipeline)
set -euo pipefail
dest="${1:-$HOME/.cache/vis-pipeline}"
video="$dest/vtest.avi"
if [ -s "$video" ]; then
  echo "$video"
  exit 0
fi
hint="get OpenCV's samples/data/vtest.avi (Debian/Ubuntu package opencv-doc, or the opencv GitHub repository) and put it at $video"
if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-deb >/dev/null 2>&1; then
  echo "[street] apt-get/dpkg-deb not found: $hint" >&2
  exit 1
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "[street] fetching vtest.avi from Debian's opencv-doc package (about 10 MB once)" >&2
if ! ( cd "$tmp" && { apt-get download opencv-doc >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && apt-get download opencv-doc >/dev/null 2>&1; }; } ); then
  echo "[street] apt-get download opencv-doc failed: $hint" >&2
  exit 1
fi
dpkg-deb -x "$tmp"/opencv-doc_*.deb "$tmp/x"
found="$(find "$tmp/x" -name vtest.avi | head -1)"
if [ -z "$found" ]; then
  echo "[street] opencv-doc has no vtest.avi: $hint" >&2
  exit 1
fi
mkdir -p "$dest"
cp "$found" "$video.part" && mv "$video.part" "$video"
echo "$video"
