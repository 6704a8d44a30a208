"""Which kernel computes attention over packed batches, decided once per device.

Packed batches (engine/packing.py) need causal attention that stays within each example.
On a CUDA GPU with FlashAttention kernels (compute capability 8.0 or newer) one varlen
kernel call does that for the whole row: ``flash_attn.flash_attn_varlen_func`` when the
``flash-attn`` package is installed, else torch's own ``torch.nn.attention.varlen``
(torch 2.10 and later; its keywords changed between releases, see :func:`_torch_varlen`).
Everywhere else -- the CPU, older GPUs, a torch without varlen -- it is the per-example
SDPA loop, which computes the same maths one example at a time.

The choice is a pure function of what the process has (:func:`choose_backend`), made once
per device and logged; a call the kernel cannot take (fp32 inputs: FlashAttention is
16-bit only; attention dropout; head dimensions over 256) runs the loop, logged once.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import logging
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["LOOP", "TORCH_VARLEN", "FLASH_ATTN", "VarlenSupport", "choose_backend", "backend_for",
           "call_problem", "varlen_kernel"]

log = logging.getLogger("modxd.engine")

LOOP, TORCH_VARLEN, FLASH_ATTN = "sdpa_loop", "torch_varlen", "flash_attn"
_MAX_HEAD_DIM = 256


@dataclass(frozen=True)
class VarlenSupport:
    """What one device and this process offer (the inputs of :func:`choose_backend`)."""

    device_type: str  # "cpu", "cuda", ...
    capability: tuple[int, int] | None = None  # CUDA compute capability
    torch_varlen: bool = False  # torch.nn.attention.varlen.varlen_attn importable
    flash_attn: bool = False  # flash_attn.flash_attn_varlen_func importable


def choose_backend(support: VarlenSupport) -> tuple[str, str]:
    """(backend, why) for packed attention on a device with ``support``."""
    if support.device_type != "cuda":
        return LOOP, f"{support.device_type} has no FlashAttention kernels: causal SDPA per packed example"
    major_minor = support.capability or (0, 0)
    if major_minor < (8, 0):
        return LOOP, (f"compute capability {major_minor[0]}.{major_minor[1]} is below 8.0 (FlashAttention needs "
                      "Ampere or newer): causal SDPA per packed example")
    if support.flash_attn:
        return FLASH_ATTN, "flash-attn's flash_attn_varlen_func (one kernel call per packed row)"
    if support.torch_varlen:
        return TORCH_VARLEN, "torch.nn.attention.varlen (FlashAttention kernels, one call per packed row)"
    return LOOP, ("neither flash-attn nor torch.nn.attention.varlen (torch 2.10+) is available: causal SDPA "
                  "per packed example")


def _importable(module: str, name: str) -> bool:
    try:
        if importlib.util.find_spec(module.split(".")[0]) is None:
            return False
        return hasattr(importlib.import_module(module), name)
    except Exception:  # a broken install (e.g. flash-attn built for another torch) counts as absent
        return False


def detect_support(device: Any) -> VarlenSupport:
    """What ``device`` (a torch.device) and this process offer."""
    import torch

    if device.type != "cuda" or not torch.cuda.is_available():
        return VarlenSupport(device.type)
    index = device.index if device.index is not None else torch.cuda.current_device()
    return VarlenSupport("cuda", tuple(torch.cuda.get_device_capability(index)),
                         _importable("torch.nn.attention.varlen", "varlen_attn"),
                         _importable("flash_attn", "flash_attn_varlen_func"))


@functools.lru_cache(maxsize=16)
def _decided(device_type: str, index: int | None) -> str:
    import torch

    device = torch.device(device_type, index) if index is not None else torch.device(device_type)
    backend, why = choose_backend(detect_support(device))
    log.info("packed attention on %s: %s", device, why)
    return backend


def backend_for(device: Any) -> str:
    """The backend for ``device``, decided (and logged) the first time it is asked."""
    return _decided(device.type, device.index)


def call_problem(dtype_name: str, head_dim: int, dropout: float) -> str | None:
    """Why one attention call cannot use a FlashAttention kernel, or None when it can."""
    if dtype_name not in ("float16", "bfloat16"):
        return f"the inputs are {dtype_name} (FlashAttention kernels take float16 or bfloat16 only)"
    if head_dim > _MAX_HEAD_DIM or head_dim % 8:
        return f"head dimension {head_dim} (FlashAttention takes multiples of 8 up to {_MAX_HEAD_DIM})"
    if dropout > 0:
        return f"attention dropout {dropout:g} (the varlen kernels run without dropout)"
    return None


_fallbacks_logged: set[str] = set()


def log_fallback_once(problem: str) -> None:
    if problem not in _fallbacks_logged:
        _fallbacks_logged.add(problem)
        log.info("packed attention: causal SDPA per example for %s", problem)


# ------------------------------------------------------------------ kernels
# Both take (total_tokens, heads, head_dim) tensors and the int32 example boundaries.

def _flash_attn(q: Any, k: Any, v: Any, bounds: Any, longest: int, scale: float | None) -> Any:
    from flash_attn import flash_attn_varlen_func

    return flash_attn_varlen_func(q, k, v, bounds, bounds, longest, longest, dropout_p=0.0, softmax_scale=scale,
                                  causal=True)  # grouped-query attention is native


@functools.lru_cache(maxsize=1)
def _torch_varlen_keywords() -> frozenset[str]:
    from torch.nn.attention.varlen import varlen_attn

    return frozenset(inspect.signature(varlen_attn).parameters)


def _torch_varlen(q: Any, k: Any, v: Any, bounds: Any, longest: int, scale: float | None,
                  kernel: Callable[..., Any] | None = None, keywords: frozenset[str] | None = None) -> Any:
    """torch's varlen attention across its releases: 2.10 says ``is_causal=True`` and has no
    ``scale`` or ``enable_gqa``; 2.11+ says ``window_size=(-1, 0)``, 2.13 adds both."""
    if kernel is None:
        from torch.nn.attention.varlen import varlen_attn as kernel
    keywords = _torch_varlen_keywords() if keywords is None else keywords
    kwargs: dict[str, Any] = {}
    if "window_size" in keywords:
        kwargs["window_size"] = (-1, 0)
    else:
        kwargs["is_causal"] = True
    if q.shape[1] != k.shape[1]:  # grouped-query attention
        if "enable_gqa" in keywords:
            kwargs["enable_gqa"] = True
        else:
            groups = q.shape[1] // k.shape[1]
            k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
    if scale is not None:
        if "scale" in keywords:
            kwargs["scale"] = scale
        else:  # the kernel scales by 1/sqrt(head_dim): fold the difference into the queries
            default = q.shape[-1] ** -0.5
            if abs(scale - default) > 1e-12 * default:
                q = q * (scale / default)
    return kernel(q, k, v, bounds, bounds, longest, longest, **kwargs)


def varlen_kernel(backend: str) -> Callable[..., Any]:
    return {FLASH_ATTN: _flash_attn, TORCH_VARLEN: _torch_varlen}[backend]
