"""Which devices a training task gets: the `devices` parameter against the host's device slots.

Pure Python (the daemon never imports torch). The daemon's training devices ("slots") are
`hardware.training_devices(config.devices)`: the GPUs (`cuda:N`) or, on a host without one,
the single `cpu` slot. A task's `devices` parameter asks for

* a count `N` (the default, 1): any N free GPUs; on a host without GPUs, N processes on the
  CPU (gloo backend), which hold the one `cpu` slot;
* ids (`0,1` or `cuda:0,cuda:1`; `cpu` names the CPU slot): exactly those slots;
* `auto`: every training device of the host.

The scheduler reserves every slot a task needs at once, in queue order: the task at the head
of the queue waits until all its devices are free, and tasks behind it wait too (no task
overtakes another, so a task that needs many devices is never starved by small ones).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .engine.features import liger_problem, qlora_problem  # the worker applies the same rules
from .device_request import MAX_PROCESSES, DeviceRequest, parse_devices  # noqa: F401 (placement's vocabulary)
from .errors import FailedPrecondition, InvalidArgument

@dataclass(frozen=True)
class Placement:
    slots: tuple[str, ...]  # the scheduler slots the task holds
    processes: tuple[str, ...]  # one device per local rank ("cuda:2", or "cpu" for each CPU rank)

    @property
    def label(self) -> str:
        """What a task shows as its device: `cuda:0,cuda:1`, `cpu` or `cpu x2`."""
        if len(self.processes) > 1 and len(self.slots) == 1:
            return f"{self.slots[0]} x{len(self.processes)}"
        return ",".join(self.slots)


def _gpus(host: list[str]) -> list[str]:
    return [d for d in host if d != "cpu"]


def impossible(request: DeviceRequest, host: list[str], cpu_count: int) -> str:
    """Why `request` can never run on a host with these slots ('' when it can).

    `cpu_count`: the CPUs a worker gets (the daemon's worker_cpus, else all it may use), which bound
    the processes a task may start on the CPU."""
    gpus = _gpus(host)
    if request.ids:
        missing = [d for d in request.ids if d not in host]
        if missing:
            return (f"parameter devices asks for {', '.join(missing)}, which this daemon does not train on "
                    f"(its training devices: {', '.join(host) or 'none'})")
        return ""
    if request.count:
        if gpus:
            if request.count > len(gpus):
                return (f"parameter devices asks for {request.count} devices but this host has "
                        f"{len(gpus)} training GPU(s) ({', '.join(gpus)})")
            return ""
        if "cpu" not in host:
            return "this daemon has no training device"
        if request.count > cpu_count:
            return (f"parameter devices asks for {request.count} processes on the CPU but this host has "
                    f"{cpu_count} CPU core(s)")
        return ""
    return "" if host else "this daemon has no training device"


def processes(request: DeviceRequest, host: list[str]) -> int:
    """Local processes (ranks on this host) the request starts once placed."""
    if request.ids:
        return len(request.ids)
    if request.count:
        return request.count
    gpus = _gpus(host)
    return len(gpus) or 1


def place(request: DeviceRequest, host: list[str], busy: set[str]) -> Placement | None:
    """The slots to reserve now, or None when they are not all free (the task waits)."""
    free = [d for d in host if d not in busy]
    gpus = _gpus(host)
    if request.ids:
        if all(d in free for d in request.ids):
            return Placement(request.ids, request.ids)
        return None
    if request.auto:
        wanted = gpus or [d for d in host if d == "cpu"]
        if wanted and all(d in free for d in wanted):
            return Placement(tuple(wanted), tuple(wanted))
        return None
    if request.count == 1:  # one device: any free slot, in the configured order
        return Placement((free[0],), (free[0],)) if free else None
    if gpus:
        chosen = [d for d in free if d != "cpu"][: request.count]
        if len(chosen) == request.count:
            return Placement(tuple(chosen), tuple(chosen))
        return None
    if "cpu" in free:  # N processes on the CPU share its one slot
        return Placement(("cpu",), ("cpu",) * request.count)
    return None


def check_task(params: dict, host: list[str], cpu_count: int) -> int:
    """Create-time check of the distribution parameters; returns the world size (all hosts)."""
    request = parse_devices(params.get("devices", "1"))
    problem = impossible(request, host, cpu_count)
    if problem:
        raise FailedPrecondition(problem)
    nnodes = int(params.get("nnodes", 1) or 1)
    world = processes(request, host) * nnodes
    strategy = params.get("distributed_strategy", "ddp")
    check_quantization_hardware(params, request, host, world, strategy)
    if world > 1 and strategy == "fsdp" and params.get("merge_lora_after_training"):
        raise InvalidArgument(
            "parameter merge_lora_after_training is not available with distributed_strategy fsdp "
            "(the weights are sharded over the ranks); merge when packaging: CreatePackage with merge "
            "(modxctl package create --merge)")
    return world


def check_quantization_hardware(params: dict, request: DeviceRequest, host: list[str], world: int,
                                strategy: str) -> None:
    """QLoRA (quantization_bit 4/8) runs bitsandbytes kernels: a CUDA GPU and the package are needed."""
    bits = int(params.get("quantization_bit", 0) or 0)
    if not bits:
        return
    problem = qlora_problem(bits, _trains_on_gpu(request, host),
                            f" (this daemon's training devices: {', '.join(host) or 'none'})")
    if problem:
        raise FailedPrecondition(problem)
    if world > 1 and strategy == "fsdp":
        raise InvalidArgument(
            f"parameter quantization_bit {bits} is not available with distributed_strategy fsdp (quantized weights "
            "are not sharded); use ddp, which keeps a quantized copy on each GPU")


def feature_warnings(params: dict, host: list[str]) -> list[tuple[str, str]]:
    """Optional GPU features asked for where they cannot apply: they are ignored, with a warning."""
    warnings: list[tuple[str, str]] = []
    if params.get("use_liger_kernel"):
        on_gpu = _trains_on_gpu(parse_devices(params.get("devices", "1")), host)
        problem = liger_problem("cuda" if on_gpu else "cpu")
        if problem:
            warnings.append(("liger_ignored", f"use_liger_kernel is ignored: {problem}"))
    return warnings


def _trains_on_gpu(request: DeviceRequest, host: list[str]) -> bool:
    return bool(_gpus(host)) and request.ids != ("cpu",)
