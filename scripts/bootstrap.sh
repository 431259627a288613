#!/usr/bin/env bash
# Create .venv and install the project (idempotent: re-runs only when pyproject.toml or this
# script changes).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
stamp="$venv/.installed-$(cat "$root/pyproject.toml" "${BASH_SOURCE[0]}" | sha1sum | cut -c1-12)"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if [ ! -f "$stamp" ]; then
  echo "[bootstrap] installing vis-pipeline into $venv (torch from the local wheel index)" >&2
  "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
  # torch first, pinned, so nothing can pull another build
  "$venv/bin/python" -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1" >&2
  "$venv/bin/python" -m pip install --quiet -e "$root[test]" >&2
  # TrackEval (HOTA/CLEAR/IDF1 scoring) declares opencv-python, which would clash with our
  # opencv-python-headless; everything else it needs is in the test extra.
  "$venv/bin/python" -m pip install --quiet --no-deps "trackeval==1.3.0" >&2
  # Datumaro (the dataset library behind CVAT; the tests read our CVAT/COCO/MOTS exports with
  # it) pins opencv-python-headless<5 and pillow~=12, which would downgrade ours (5.0.0.93,
  # 13.0.0); its other requirements are in the test extra. Its readers work with ours.
  "$venv/bin/python" -m pip install --quiet --no-deps "datumaro==1.13.12" >&2
  rm -f "$venv"/.installed-*
  touch "$stamp"
fi
