#!/usr/bin/env bash
# Set everything up, then run the whole product on SmolLM2-135M (see scripts/demo.py).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python scripts/demo.py "$@"
