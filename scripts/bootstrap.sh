#!/usr/bin/env bash
# Create .venv and install the project (idempotent: re-runs only when pyproject.toml changes).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
stamp="$venv/.installed-$(sha1sum "$root/pyproject.toml" | cut -c1-12)"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if [ ! -f "$stamp" ]; then
  echo "[bootstrap] installing vis-pipeline into $venv (torch from the local wheel index)" >&2
  "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
  # torch first, pinned, so nothing can pull another build
  "$venv/bin/python" -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1" >&2
  "$venv/bin/python" -m pip install --quiet -e "$root[test]" >&2
  rm -f "$venv"/.installed-*
  touch "$stamp"
fi
