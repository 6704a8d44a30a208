"""Which floating-point formats a training run uses, from what was asked and what the device has.

:func:`decide_precision` is pure (the device's facts come in as :class:`DeviceCaps`), so every
rule is unit-tested on a CPU; :func:`resolve_precision` reads the facts from torch. The rules:

* ``bf16`` on a GPU of compute capability 8.0+ (Ampere or newer); elsewhere it falls back to
  fp16 (a GPU, when fp16 is also on) or fp32, with a warning.
* ``fp16`` on any CUDA GPU, with loss scaling (``Trainer``'s ``fp16=True`` runs a GradScaler);
  on the CPU it falls back to fp32: with a warning when the task set fp16 itself, a logged note when
  fp16 is only the default (nothing the user chose was refused). When the seed's default is left as it is
  (fp16 on, bf16 off) and the GPU has bf16, bf16 is used instead: the same memory and speed,
  without fp16's overflow or the loss scaling it needs. ``fp16_explicit`` keeps fp16.
* ``tf32`` (fp32 matrix products on tensor cores) on compute capability 8.0+, else a warning.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DeviceCaps", "Precision", "decide_precision", "device_caps", "resolve_precision"]


@dataclass(frozen=True)
class DeviceCaps:
    """What a device offers for precision: its kind, name and CUDA compute capability."""

    kind: str = "cpu"  # "cpu" or "cuda"
    name: str = "the CPU"
    major: int = 0  # compute capability major (8 = Ampere, 9 = Hopper)

    @property
    def has_bf16(self) -> bool:
        return self.kind == "cuda" and self.major >= 8

    @property
    def has_fp16(self) -> bool:
        return self.kind == "cuda"

    @property
    def where(self) -> str:
        return f"this GPU ({self.name})" if self.kind == "cuda" else "the CPU"


@dataclass
class Precision:
    """The precision actually used, after falling back from what was asked."""

    fp16: bool = False
    bf16: bool = False
    tf32: bool = False
    warnings: list[dict[str, str]] = field(default_factory=list)  # fallbacks: shown to the user
    notes: list[str] = field(default_factory=list)  # choices that are not fallbacks: logged

    @property
    def load_dtype_name(self) -> str:
        return "bfloat16" if self.bf16 else "float16" if self.fp16 else "float32"

    @property
    def loss_scaling(self) -> bool:
        """fp16 gradients underflow without it (Trainer's GradScaler); bf16 and fp32 need none."""
        return self.fp16


# fp16 and bf16 both on: warned at create (validation.py) and by the worker, in these words.
PRECISION_CONFLICT = {"code": "precision_conflict",
                      "message": "fp16 and bf16 are both on; bf16 is used where the GPU supports it"}


def decide_precision(caps: DeviceCaps, fp16: bool, bf16: bool, tf32: bool,
                     fp16_explicit: bool = False) -> Precision:
    """Turn the requested formats into supported ones, with a warning per fallback."""
    out = Precision()
    where = caps.where
    if fp16 and bf16:
        out.warnings.append(dict(PRECISION_CONFLICT))
    if bf16:
        if caps.has_bf16:
            out.bf16 = True
        else:
            instead = "fp16" if fp16 and caps.has_fp16 else "fp32"
            out.warnings.append({"code": "bf16_unavailable",
                                 "message": f"bf16 needs an NVIDIA Ampere or newer GPU; {where} does not support "
                                            f"it, training in {instead} instead"})
    if fp16 and not out.bf16:
        if not bf16 and caps.has_bf16 and not fp16_explicit:
            out.bf16 = True
            out.notes.append(f"fp16 is on (the default) and {where} supports bf16: training in bf16, which needs "
                             "no loss scaling and does not overflow")
        elif caps.has_fp16:
            out.fp16 = True
        elif fp16_explicit:  # asked for and not given: a fallback the user must hear of
            out.warnings.append({"code": "fp16_unavailable",
                                 "message": f"fp16 mixed precision needs a CUDA GPU; training on {where} in fp32 "
                                            "instead"})
        else:  # the default on a device without it: nothing the user chose was refused
            out.notes.append(f"fp16 is on (the default) and {where} has no fp16 mixed precision: training in fp32")
    if out.fp16:
        out.notes.append("fp16 mixed precision with dynamic loss scaling")
    if tf32:
        if caps.has_bf16:
            out.tf32 = True
        else:
            out.warnings.append({"code": "tf32_unavailable",
                                 "message": f"tf32 needs an NVIDIA Ampere or newer GPU; {where} does not support it, "
                                            "so matrix multiplications stay in full fp32"})
    return out


def device_caps(device: str) -> DeviceCaps:
    """The facts :func:`decide_precision` needs, read from torch for ``device``."""
    import torch

    if not device.startswith("cuda") or not torch.cuda.is_available():
        return DeviceCaps()
    index = int(device.split(":", 1)[1]) if ":" in device else torch.cuda.current_device()
    return DeviceCaps("cuda", torch.cuda.get_device_name(index), torch.cuda.get_device_capability(index)[0])


def resolve_precision(device: str, fp16: bool, bf16: bool, tf32: bool, fp16_explicit: bool = False) -> Precision:
    return decide_precision(device_caps(device), fp16, bf16, tf32, fp16_explicit)
