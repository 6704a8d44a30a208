"""The VRAM estimate of a task at create and start: engine/memory.py's numbers against this host's GPUs.

Pure Python (the daemon never imports torch). A task that trains on the CPU gets no device
estimate here (issue 19 adds host memory and time). When the weights and optimizer state alone
exceed the GPU, no batch size can help and the task is refused; when the whole estimate exceeds
it, the task is created with a warning that says what would fit.
"""
from __future__ import annotations

from typing import Any

from . import placement
from .engine.memory import memory_verdict, model_shape
from .errors import FailedPrecondition
from .hardware import Gpu

__all__ = ["plan_memory"]


def _capacity(params: dict[str, Any], gpus: list[Gpu]) -> tuple[str, int] | None:
    """(device label, bytes) of the smallest GPU the task may be placed on, or None for the CPU."""
    if not gpus:
        return None
    request = placement.parse_devices(params.get("devices", "1"))
    if request.ids == ("cpu",):
        return None
    chosen = [g for g in gpus if g.device in request.ids] if request.ids else gpus
    if not chosen:
        return None
    smallest = min(chosen, key=lambda g: g.total_memory_bytes)
    return f"{smallest.device} ({smallest.name})", smallest.total_memory_bytes


def plan_memory(params: dict[str, Any], model_config: dict[str, Any], parameters: int, gpus: list[Gpu],
                world: int = 1) -> tuple[dict[str, Any] | None, list[tuple[str, str]]]:
    """(the estimate to store with the task or None, warnings); raises when it can never fit."""
    where = _capacity(params, gpus)
    if where is None:
        return None, []
    device, capacity = where
    try:
        shape = model_shape(model_config, parameters)
    except (TypeError, ValueError):
        return None, [("memory_estimate_unavailable", "no GPU memory estimate: config.json lacks the model's "
                                                       "dimensions (hidden_size, num_hidden_layers)")]
    effective = dict(params)
    if world > 1 and params.get("distributed_strategy") == "fsdp":  # weights and state are sharded
        capacity *= world
    verdict = memory_verdict(shape, effective, device, capacity)
    if verdict["refuse"]:
        raise FailedPrecondition(
            f"the model does not fit {device}: its weights and optimizer state alone need about "
            f"{(verdict['parts']['weights'] + verdict['parts']['trainable_state']) / 1024**3:.1f} GiB of "
            f"{capacity / 1024**3:.1f} GiB; " + "; ".join(verdict["advice"] or ["use a larger GPU"]))
    warnings = [] if verdict["fits"] else [("memory_insufficient", verdict["explanation"])]
    return verdict, warnings
