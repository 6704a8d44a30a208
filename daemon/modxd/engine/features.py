"""The GPU-only training features and their one rule each, applied at create (placement.py, on the
daemon's host) and in the worker before anything is loaded (where the run really is).

QLoRA (``quantization_bit``) runs bitsandbytes' CUDA kernels: on the CPU, or without the
package, the task is refused with a sentence. Liger's fused kernels (``use_liger_kernel``) are
an optimization: where they cannot run they are dropped with a warning and training goes on
without them. Pure Python: nothing here imports torch or the packages it looks for.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Any, Callable

from .models import EngineError

__all__ = ["check_gpu_features", "liger_problem", "qlora_problem"]


def qlora_problem(bits: int, on_gpu: bool, where: str = "") -> str:
    """Why ``quantization_bit`` cannot train here ('' when it can): a CUDA GPU and bitsandbytes are needed.
    `where` adds what the caller knows of the devices to the CPU sentence."""
    if not bits:
        return ""
    if not on_gpu:
        return (f"parameter quantization_bit {bits} (QLoRA) needs a CUDA GPU, and this task would train on the "
                f"CPU{where}: bitsandbytes' quantized layers do not train there; set quantization_bit 0")
    if importlib.util.find_spec("bitsandbytes") is None:
        return (f"parameter quantization_bit {bits} (QLoRA) needs the bitsandbytes package, which is not installed "
                "where modx trains (pip install bitsandbytes); or set quantization_bit 0")
    return ""


def liger_problem(device: str, model_type: str | None = None) -> str | None:
    """Why Liger's kernels cannot be used here, or None when they can. Without `model_type` (the daemon,
    which never imports torch) the package is only looked for, not imported."""
    if not device.startswith("cuda"):
        return "Liger's kernels are Triton kernels for CUDA GPUs, and this run is on the CPU"
    if importlib.util.find_spec("liger_kernel") is None:
        return "the liger-kernel package is not installed where modx trains (pip install liger-kernel)"
    if model_type is None:
        return None
    try:
        from liger_kernel.transformers.monkey_patch import MODEL_TYPE_TO_APPLY_LIGER_FN
    except Exception as exc:  # built for another torch/triton
        return f"the liger-kernel package cannot be imported ({type(exc).__name__}: {exc})"
    if model_type not in MODEL_TYPE_TO_APPLY_LIGER_FN:
        return f"liger-kernel has no kernels for the '{model_type}' model family"
    return None


def check_gpu_features(params: Mapping[str, Any], device: str, model_type: str,
                       warn: Callable[[str, str], None]) -> bool:
    """QLoRA needs a GPU (refused otherwise); returns whether Liger's kernels are used: asked for, and
    able to run here (else dropped with a warning)."""
    problem = qlora_problem(params["quantization_bit"], device.startswith("cuda"))
    if problem:
        raise EngineError(problem)
    if not params["use_liger_kernel"]:
        return False
    problem = liger_problem(device, model_type)
    if problem:
        warn("liger_ignored", f"use_liger_kernel is ignored: {problem}")
        return False
    return True
