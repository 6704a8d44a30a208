"""Whether a training run fits in memory: the one rule, for host memory (CPU runs) and GPU memory.

Every estimate is judged here: the run estimate (task_estimate.py: calibrated on this device, or
modelled from the data's real lengths), or, for a task with none (preference pairs, a tokenizer
without tokenizer.json), the model-only estimate of engine/memory.py at ``max_seq_length``
(:func:`plan_memory`, which also stores the GPU breakdown by part). The rule:

* **refused** when memory surely cannot hold the run: the part no batch or sequence setting shrinks
  (weights, optimizer state, the CUDA context; what a calibration held once the model had loaded)
  exceeds the device, or a peak *measured* on this device (a calibrated estimate) does;
* ``memory_insufficient`` (a warning) when only a *modelled* peak exceeds it: the activation model
  is rough, so the run may go ahead, and the sentence says what would fit;
* ``memory_tight`` (a warning) when the peak fits but is above 90 % of the device or above what is
  free right now.

The device is the host's memory for a CPU run and the smallest GPU the task may be placed on
otherwise (times the world with FSDP, which shards weights and optimizer state).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import hardware
from .engine.memory import estimate_training_memory, memory_advice, model_shape
from .engine.run_estimate import CPU_RUNTIME_BYTES
from .errors import FailedPrecondition
from .hardware import Gpu
from .device_request import parse_devices

__all__ = ["Capacity", "capacity", "judge", "consequences", "plan_memory"]

GiB = 1024**3
TIGHT_SHARE = 0.9  # of the device: above it, other processes are likely squeezed


@dataclass(frozen=True)
class Capacity:
    """The memory a run is judged against."""
    device: str  # "cpu" or "cuda:0 (NVIDIA H100 80GB HBM3)"
    total_bytes: int
    free_bytes: int
    kind: str  # "host_rss" or "device" (the RunEstimate's memory kinds)


def capacity(params: dict[str, Any], gpus: list[Gpu], device: str = "", world: int = 1) -> Capacity:
    """The host's memory for a CPU run, else the smallest GPU the task may be placed on (``device``,
    the one placement chose, when the request names none)."""
    request = parse_devices(params.get("devices", "1"))
    chosen = [] if request.ids == ("cpu",) or device == "cpu" else (
        [g for g in gpus if g.device in request.ids] if request.ids else
        [g for g in gpus if g.device == device] or list(gpus))
    if not chosen and device.startswith("cuda"):  # a GPU nvidia-smi did not describe: nothing to judge against
        return Capacity(device, 0, 0, "device")
    if not chosen:
        return Capacity("cpu", hardware.host_memory_bytes(), hardware.available_host_memory_bytes(), "host_rss")
    smallest = min(chosen, key=lambda g: g.total_memory_bytes)
    scale = world if world > 1 and params.get("distributed_strategy") == "fsdp" else 1
    return Capacity(f"{smallest.device} ({smallest.name})", smallest.total_memory_bytes * scale,
                    smallest.free_memory_bytes * scale, "device")


def judge(peak: int, floor: int, measured: bool, where: Capacity) -> dict[str, Any]:
    """The verdict on an estimated ``peak`` whose ``floor`` no batch setting shrinks (module docstring);
    an unknown capacity (0) judges nothing."""
    total = where.total_bytes
    refuse = bool(total) and (floor > total or (measured and peak > total))
    fits = not total or peak <= total
    tight = fits and bool(total) and (peak > TIGHT_SHARE * total or (where.free_bytes and peak > where.free_bytes))
    memory = "RSS" if where.kind == "host_rss" else "GPU memory"
    of = "host memory" if where.kind == "host_rss" else f"{where.device} memory"
    sentence = (f"estimated peak {memory} {peak / GiB:.2f} GiB of {total / GiB:.1f} GiB {of}"
                + (f" ({where.free_bytes / GiB:.1f} GiB free now)" if where.free_bytes else "")
                + ("" if measured else ", modelled (not measured on this device)"))
    if floor > total and total:
        sentence += f"; the weights and optimizer state alone need about {floor / GiB:.1f} GiB"
    return {"kind": where.kind, "device": where.device, "estimate_bytes": int(peak), "floor_bytes": int(floor),
            "capacity_bytes": int(total), "available_bytes": int(where.free_bytes), "measured": measured,
            "fits": fits, "tight": tight, "refuse": refuse, "explanation": sentence}


def consequences(verdict: dict[str, Any], advice: list[str]) -> list[tuple[str, str]]:
    """The warnings of a verdict; raises FailedPrecondition when it refuses the run."""
    tip = "try " + "; ".join(advice) if advice else ""
    if verdict["refuse"]:
        raise FailedPrecondition(f"the run will not fit: {verdict['explanation']}" + (f"; {tip}" if tip else ""))
    if not verdict["fits"]:
        return [("memory_insufficient", f"{verdict['explanation']}: it will probably not fit" + (f"; {tip}" if tip else ""))]
    if verdict["tight"]:
        risk = "swap or be killed" if verdict["kind"] == "host_rss" else "run out of memory"
        return [("memory_tight", f"{verdict['explanation']}: the run may {risk}" + (f"; {tip}" if tip else ""))]
    return []


def plan_memory(params: dict[str, Any], model_config: dict[str, Any], parameters: int, where: Capacity,
                run_verdict: dict[str, Any] | None) -> tuple[dict[str, Any] | None, list[tuple[str, str]]]:
    """The GPU memory breakdown to store with the task (None on the CPU), and the warnings of the
    model-only estimate.

    With a run estimate (``run_verdict``, already judged) the breakdown only shows the parts and
    carries that verdict; without one (preference pairs, a tokenizer the data report cannot count
    with) the model-only estimate is judged here, on the CPU as on a GPU."""
    if run_verdict is not None and where.kind != "device":
        return None, []
    try:
        shape = model_shape(model_config, parameters)
    except (TypeError, ValueError):
        return None, [("memory_estimate_unavailable", "no memory estimate: config.json lacks the model's "
                                                       "dimensions (hidden_size, num_hidden_layers)")]
    device_kind = "cuda" if where.kind == "device" else "cpu"
    estimate = estimate_training_memory(shape, params, device_kind)
    runtime = CPU_RUNTIME_BYTES if device_kind == "cpu" else 0  # the worker's Python, torch and libraries
    advice = memory_advice(shape, params, where.total_bytes, device_kind)
    verdict, warnings = run_verdict, []
    if verdict is None:
        verdict = judge(estimate.total + runtime, estimate.fixed + runtime, False, where)
        warnings = consequences(verdict, advice)
    if where.kind != "device":
        return None, warnings
    return {"device": where.device, "capacity_bytes": where.total_bytes, "estimate_bytes": int(estimate.total),
            "parts": {k: int(v) for k, v in estimate.parts.items()}, "fits": verdict["fits"],
            "advice": advice if not verdict["fits"] or verdict["tight"] else [],
            "explanation": f"{verdict['explanation']}; by part at max_seq_length: {estimate.describe()}"}, warnings
