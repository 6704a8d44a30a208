#!/usr/bin/env bash
# The GPU check: one command, under 9 minutes on one H100 (tests 150 s, measurements 360 s at most), no network (docs/gpu.md).
#
#   bench/gpu_check.sh            on a CUDA GPU: tests marked gpu, then the measurements;
#                                 writes the "GPU" section of docs/benchmarks.md (and copies it,
#                                 with gpu_check.json and the logs, to $OUT when set)
#   bench/gpu_check.sh --dry-run  every step on the CPU with tiny models; writes nothing into docs/
#
# Python: $PYTHON, else .venv/bin/python, else python3 (the GPU image's, with its own torch).
# Wheels the image lacks (bitsandbytes, liger-kernel) travel in .whl/ (git-ignored; see docs/gpu.md)
# and are installed into a private target dir, never over the image's packages.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON; elif [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
export MODX_BENCH_CACHE=${MODX_BENCH_CACHE:-/tmp/modx-gpu-check}
if ls .whl/*.whl >/dev/null 2>&1; then
    echo "== installing the carried wheels: $(ls .whl | tr '\n' ' ')"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/modx-site .whl/*.whl \
        && export PYTHONPATH=/tmp/modx-site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD/daemon:$PWD/clients/python:$PWD/gen/python:$PWD${PYTHONPATH:+:$PYTHONPATH}
LOGS=${OUT:-$MODX_BENCH_CACHE}
mkdir -p "$LOGS" "$MODX_BENCH_CACHE"
started=$(date +%s)

echo "== 1/3 what is here"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv
"$PY" bench/gpu_check.py --env-only || { echo "the environment cannot run modx's engine"; exit 1; }

echo "== 2/3 tests marked gpu"
timeout 150 "$PY" -m pytest -q --noconftest -p tests.fixtures.plugin -p no:cacheprovider -m gpu tests/gpu \
    -o addopts="-ra" 2>&1 | tee "$LOGS/gpu_tests.log"
tests_rc=${PIPESTATUS[0]}
echo "gpu tests: exit $tests_rc after $(( $(date +%s) - started )) s"

echo "== 3/3 measurements"
timeout 360 "$PY" bench/gpu_check.py "$@" 2>&1 | tee "$LOGS/gpu_check.log"
bench_rc=${PIPESTATUS[0]}
echo "gpu check: tests exit $tests_rc, measurements exit $bench_rc, $(( $(date +%s) - started )) s in all"
[ "$tests_rc" -eq 0 ] && [ "$bench_rc" -eq 0 ]
