"""Device telemetry for metrics points: GPU memory from torch, utilization/power/temperature from NVML.

Every reading is optional: torch's allocator counters exist on CUDA only, NVML needs the
``nvidia-ml-py`` package (module ``pynvml``) and the driver's library, the process RSS needs
psutil. What a host lacks is simply absent from the point, never an error: a training run
must not fail because a sensor is missing. NVML failures are logged once.
"""

from __future__ import annotations

import logging
import os
from typing import Any

__all__ = ["DeviceTelemetry", "nvml_index", "peak_memory_bytes"]

log = logging.getLogger("modxd.engine")


def nvml_index(cuda_index: int, visible: str | None) -> int:
    """NVML counts physical GPUs; torch counts those in CUDA_VISIBLE_DEVICES, in its order."""
    if not visible:
        return cuda_index
    ids = [v.strip() for v in visible.split(",") if v.strip()]
    if cuda_index < len(ids) and ids[cuda_index].isdigit():
        return int(ids[cuda_index])
    return cuda_index


class DeviceTelemetry:
    """Readings of one training process's device, sampled when a metrics point is logged."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.cuda_index: int | None = None
        if device.startswith("cuda"):
            import torch

            if torch.cuda.is_available():
                self.cuda_index = int(device.split(":", 1)[1]) if ":" in device else torch.cuda.current_device()
        self._nvml: Any = None
        self._handle: Any = None
        self._nvml_failed = False
        self._process: Any = None
        try:
            import psutil

            self._process = psutil.Process(os.getpid())
        except Exception:  # psutil missing or unusable: no RSS
            self._process = None

    def reset_peak(self) -> None:
        """Start the peak at the beginning of training (loading the model is part of it anyway)."""
        if self.cuda_index is not None:
            import torch

            torch.cuda.reset_peak_memory_stats(self.cuda_index)

    def _nvml_handle(self) -> Any:
        if self._handle is not None or self._nvml_failed or self.cuda_index is None:
            return self._handle
        try:
            import pynvml

            pynvml.nvmlInit()
            index = nvml_index(self.cuda_index, os.environ.get("CUDA_VISIBLE_DEVICES"))
            self._nvml, self._handle = pynvml, pynvml.nvmlDeviceGetHandleByIndex(index)
        except Exception as exc:  # no nvidia-ml-py, no driver library, a GPU NVML does not know
            self._nvml_failed = True
            log.info("no GPU utilization, power or temperature in the metrics: NVML is unavailable (%s)",
                     type(exc).__name__ if not str(exc) else exc)
        return self._handle

    def sample(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self._process is not None:
            try:
                out["host_memory_rss_bytes"] = int(self._process.memory_info().rss)
            except Exception:
                pass
        if self.cuda_index is None:
            return out
        import torch

        out["device_memory_allocated_bytes"] = int(torch.cuda.memory_allocated(self.cuda_index))
        out["device_memory_reserved_bytes"] = int(torch.cuda.memory_reserved(self.cuda_index))
        out["device_memory_peak_bytes"] = int(torch.cuda.max_memory_allocated(self.cuda_index))
        handle = self._nvml_handle()
        if handle is not None:
            nvml = self._nvml
            for key, read in (("gpu_utilization_percent", lambda: float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)),
                              ("gpu_power_watts", lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0),
                              ("gpu_temperature_celsius",
                               lambda: float(nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)))):
                try:
                    out[key] = read()
                except Exception:  # a sensor this GPU does not expose
                    continue
        return out


def peak_memory_bytes(device: str) -> int | None:
    """The peak GPU memory allocated by this process since the last reset, or None off CUDA."""
    if not device.startswith("cuda"):
        return None
    import torch

    if not torch.cuda.is_available():
        return None
    index = int(device.split(":", 1)[1]) if ":" in device else torch.cuda.current_device()
    return int(torch.cuda.max_memory_allocated(index))


def host_peak_rss_bytes() -> int:
    """This process's peak resident memory so far (VmHWM; ``ru_maxrss`` where /proc is absent)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
