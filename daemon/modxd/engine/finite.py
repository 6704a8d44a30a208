"""Non-finite numbers never pass as training.

* :class:`StepHealth`: the loss of every micro-batch and the gradient norm of every optimizer
  step are checked (one device sync per step; summed over the ranks, so every rank stops at the
  same step); the first NaN or inf fails the run with a sentence that names the step, before
  that step is logged or saved. Trainer's own NaN filter would have shown such a loss as 0.0.
* :func:`model_weights_problem`: a loaded model whose weights hold NaN or inf is not trained.
* :func:`checkpoint_weights_problem`: the safetensors files of a checkpoint, read with numpy
  (no torch), so the daemon can refuse a resume from a checkpoint with non-finite weights
  before a worker is spent on it, and the worker checks it again before training.
"""

from __future__ import annotations

import math
import os
from typing import Any

from .models import EngineError
from .safetensors_header import read_header

__all__ = ["TrainingDiverged", "StepHealth", "diverged", "model_weights_problem", "checkpoint_weights_problem",
           "safetensors_problem", "DAEMON_CHECK_MAX_BYTES"]

DAEMON_CHECK_MAX_BYTES = 256 << 20  # the daemon reads checkpoints up to this size at resume; the worker, all
_CHUNK = 1 << 24  # elements per numpy pass: bounds the temporary arrays of a large tensor
_WIDTH = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2}  # bytes per element of the float formats (F8: 1)


class TrainingDiverged(EngineError):
    """A NaN or infinite loss or gradient norm. ``str()`` is the whole sentence, reported as it is."""

    sentence = True


def _kind(value: float) -> str:
    return "NaN" if math.isnan(value) else "infinite"


def diverged(what: str, value: float, step: int, learning_rate: float) -> TrainingDiverged:
    return TrainingDiverged(
        f"{what} is {_kind(value)} at step {step}: training diverged, so the task stops here and saves nothing "
        f"from this step on; lower learning_rate (it is {learning_rate:g}), check the training data and the model "
        "weights, then start again or resume from an earlier checkpoint")


class StepHealth:
    """Adds up the micro-batch losses of an optimizer step on the device; checks them with the gradient norm."""

    def __init__(self, learning_rate: float):
        self.learning_rate = learning_rate
        self._loss: Any = None

    def add_loss(self, loss: Any) -> None:
        value = loss.detach().float().reshape(())
        self._loss = value if self._loss is None else self._loss + value  # NaN and inf survive a sum

    def check(self, step: int, grad_norm: Any, step_skipped: bool = False) -> None:
        """Raise :class:`TrainingDiverged` when this step's loss or gradient norm is not finite.

        A step the fp16 loss scaler skipped had an overflowing gradient by design (the scale is
        lowered and the weights are untouched), so only its loss counts. Called once per optimizer
        step on every rank; the second call of a step (Trainer's epoch end) checks nothing.
        """
        if self._loss is None:
            return
        import torch

        from .distributed import sum_over_ranks

        loss, self._loss = self._loss, None
        if grad_norm is None or step_skipped:
            norm = torch.zeros((), device=loss.device)
        else:
            if hasattr(grad_norm, "full_tensor"):  # a DTensor (FSDP2)
                grad_norm = grad_norm.full_tensor()
            norm = torch.as_tensor(grad_norm).detach().float().reshape(()).to(loss.device)
        total_loss, total_norm = sum_over_ranks(torch.stack([loss, norm])).tolist()
        if not math.isfinite(total_loss):
            raise diverged("loss", total_loss, step, self.learning_rate)
        if not math.isfinite(total_norm):
            raise diverged("gradient norm", total_norm, step, self.learning_rate)


def model_weights_problem(model: Any) -> str:
    """'NaN in NAME (dtype)' for the first parameter or buffer that is not finite, else ''."""
    import torch

    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if not tensor.is_floating_point() or tensor.device.type == "meta":
            continue
        data = tensor.detach()
        if not bool(torch.isfinite(data).all()):
            kind = "NaN" if bool(torch.isnan(data).any()) else "infinite values"
            return f"{kind} in {name} ({str(tensor.dtype).removeprefix('torch.')})"
    return ""


# ----------------------------------------------------------------------------- safetensors files, no torch

def _float_bits(dtype: str) -> tuple[str, int, int] | None:
    """(numpy unsigned view, exponent mask, mantissa mask) of the float formats numpy cannot hold."""
    return {"BF16": ("<u2", 0x7F80, 0x007F), "F8_E5M2": ("u1", 0x7C, 0x03)}.get(dtype)


def _chunk_problem(dtype: str, raw: Any) -> str:
    import numpy as np

    native = {"F64": "<f8", "F32": "<f4", "F16": "<f2"}.get(dtype)
    if native is not None:
        values = raw.view(native)
        if np.isfinite(values).all():
            return ""
        return "NaN" if np.isnan(values).any() else "infinite values"
    if dtype == "F8_E4M3":  # the fn variant: no infinity, NaN is every exponent and mantissa bit set
        return "NaN" if ((raw & 0x7F) == 0x7F).any() else ""
    bits = _float_bits(dtype)
    if bits is None:
        return ""  # integers, booleans: always finite
    view, exponent, mantissa = bits
    values = raw.view(view)
    special = (values & exponent) == exponent
    if not special.any():
        return ""
    return "NaN" if ((values & mantissa)[special] != 0).any() else "infinite values"


def safetensors_problem(path: str) -> str:
    """'NaN in TENSOR' for the first tensor of a safetensors file that is not finite, else ''."""
    import numpy as np

    try:
        with open(path, "rb") as f:
            length = int.from_bytes(f.read(8), "little")
        for name, info in read_header(path).items():
            begin, end = (int(x) for x in info["data_offsets"])
            if end <= begin:
                continue
            data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + length + begin, shape=(end - begin,))
            step = _CHUNK * _WIDTH.get(info["dtype"], 1)
            for start in range(0, end - begin, step):
                kind = _chunk_problem(info["dtype"], data[start:start + step])
                if kind:
                    return f"{kind} in {name}"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"cannot be read as safetensors ({type(exc).__name__}: {exc})"
    return ""


def checkpoint_weights_problem(directory: str, max_bytes: int | None = None) -> str | None:
    """'FILE holds NaN in TENSOR' for a checkpoint (or model) dir with non-finite weights, '' when every
    weight is finite, None when the files are larger than ``max_bytes`` and were not read."""
    files = sorted(name for name in os.listdir(directory) if name.endswith(".safetensors"))
    paths = [os.path.join(directory, name) for name in files]
    if max_bytes is not None and sum(os.path.getsize(p) for p in paths) > max_bytes:
        return None
    for name, path in zip(files, paths):
        problem = safetensors_problem(path)
        if problem:
            return f"{name} holds {problem}"
    return ""
