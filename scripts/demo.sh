#!/usr/bin/env bash
# The bundled demo: shipped sample video -> shipped demo model -> tracking -> JSONL + overlay
# video + Kafka (an embedded tansu broker on loopback), then the Kafka topic is read back with
# the consumer helper. Extra arguments go to run_pipeline.py (e.g. --set keyframes.interval=1).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh"
cd "$root"
exec "$root/.venv/bin/python" -m tools.demo "$@"
