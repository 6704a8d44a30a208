"""GPU-only training features, checked in the worker before anything is loaded.

QLoRA (``quantization_bit``) runs bitsandbytes' CUDA kernels: on the CPU, or without the
package, the run is refused with a sentence (the daemon refuses it at create already, see
placement.py; this catches a task created on another host or a direct engine call). Liger's
fused kernels (``use_liger_kernel``) are an optimization: where they cannot run they are
dropped with a warning and training goes on without them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable

from .models import EngineError

__all__ = ["check_gpu_features", "liger_problem"]


def check_gpu_features(params: Mapping[str, Any], device: str, model_type: str,
                       warn: Callable[[str, str], None]) -> bool:
    """QLoRA needs a GPU (refused otherwise); returns whether Liger's kernels are used: asked for, and
    able to run here (else dropped with a warning)."""
    bits = params["quantization_bit"]
    if bits and device == "cpu":
        raise EngineError(f"quantization_bit {bits} (QLoRA) needs a CUDA GPU: bitsandbytes' "
                          "quantized layers do not train on the CPU; set quantization_bit 0")
    if bits:
        import importlib.util

        if importlib.util.find_spec("bitsandbytes") is None:
            raise EngineError(f"quantization_bit {bits} (QLoRA) needs the bitsandbytes package, "
                              "which is not installed in the training worker's environment")
    if not params["use_liger_kernel"]:
        return False
    problem = liger_problem(device, model_type)
    if problem:
        warn("liger_ignored", f"use_liger_kernel is ignored: {problem}")
        return False
    return True


def liger_problem(device: str, model_type: str) -> str | None:
    """Why Liger's kernels cannot be used here, or None when they can."""
    if not device.startswith("cuda"):
        return "Liger's kernels are Triton kernels for CUDA GPUs, and this run is on the CPU"
    try:
        from liger_kernel.transformers.monkey_patch import MODEL_TYPE_TO_APPLY_LIGER_FN
    except Exception as exc:  # not installed, or built for another torch/triton
        return f"the liger-kernel package cannot be imported ({type(exc).__name__}: {exc})"
    if model_type not in MODEL_TYPE_TO_APPLY_LIGER_FN:
        return f"liger-kernel has no kernels for the '{model_type}' model family"
    return None
