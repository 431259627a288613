#!/usr/bin/env bash
# Lint and format check (ruff, pinned in the test extra): what CI enforces. Fix with
#   .venv/bin/ruff check --fix . && .venv/bin/ruff format .
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh"
cd "$root"
"$root/.venv/bin/ruff" check .
"$root/.venv/bin/ruff" format --check .
