#!/usr/bin/env bash
# Run the test suite (sets up .venv on first use). Extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh"
bash "$root/scripts/system_packages.sh"
bash "$root/scripts/real_footage.sh"
cd "$root"
exec "$root/.venv/bin/python" -m pytest "$@"
