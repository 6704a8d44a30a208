"""What the host has, found without importing torch (the daemon stays small).

GPUs come from `nvidia-smi`; versions from package metadata. Worker processes
import torch; the daemon only reads facts about it.
"""
from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass

GiB = 1024**3

# The seed's VRAM guidance: (size class, upper bound in billions, LoRA GiB, full GiB).
VRAM_TABLE: tuple[tuple[str, float, int, int], ...] = (
    ("<1B", 1.0, 4, 16),
    ("1-3B", 3.0, 6, 24),
    ("3-7B", 7.0, 8, 40),
    ("7-14B", 14.0, 12, 80),
)

ENGINE_PACKAGES = ("torch", "transformers", "peft", "accelerate", "datasets", "gguf", "llama_cpp_python",
                   "tokenizers", "safetensors", "grpcio", "protobuf", "aiosqlite")


@dataclass
class Gpu:
    index: int
    name: str
    total_memory_bytes: int
    free_memory_bytes: int
    compute_capability: str

    @property
    def device(self) -> str:
        return f"cuda:{self.index}"

    @property
    def bf16(self) -> bool:
        try:
            return float(self.compute_capability) >= 8.0
        except ValueError:
            return False


def detect_gpus() -> list[Gpu]:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run(
            [exe, "--query-gpu=index,name,memory.total,memory.free,compute_cap",
             "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 5:
            continue
        gpus.append(Gpu(int(parts[0]), parts[1], int(float(parts[2])) * 1024**2,
                        int(float(parts[3])) * 1024**2, parts[4]))
    if visible is not None:
        wanted = [v.strip() for v in visible.split(",") if v.strip()]
        gpus = [g for g in gpus if str(g.index) in wanted]
    return gpus


def training_devices(configured: list[str] | str) -> list[str]:
    """Device slots of the scheduler: one training job per slot."""
    if configured != "auto":
        return list(configured) or ["cpu"]
    gpus = detect_gpus()
    return [g.device for g in gpus] or ["cpu"]


def package_versions() -> dict[str, str]:
    versions = {}
    for name in ENGINE_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name.replace("_", "-"))
        except importlib.metadata.PackageNotFoundError:
            versions[name] = ""
    return versions


def available_cpus() -> set[int]:
    """The CPUs this process may run on: its affinity mask (worker_cpus, a container's cpuset), which
    can be fewer than os.cpu_count() reports. Thread counts are sized from it."""
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


def usable_cpu_count() -> int:
    return len(available_cpus())


def available_host_memory_bytes() -> int:
    """MemAvailable from /proc/meminfo (what can be had without swapping), or 0 when unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def host_memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 0


def python_version() -> str:
    return sys.version.split()[0]


def platform_name() -> str:
    return platform.platform()


def cuda_version() -> str:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return ""
    try:
        out = subprocess.run([exe], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    marker = "CUDA Version:"
    return out.split(marker, 1)[1].split()[0] if marker in out else ""


def param_count_text(billion: float) -> str:
    """A parameter count for a sentence: "1.24B", "135M", "43.2K" (a test model is not "0.00B")."""
    if billion >= 1:
        return f"{billion:.2f}B"
    if billion >= 1e-3:
        return f"{billion * 1e3:.0f}M"
    return f"{billion * 1e6:.1f}K"


def size_class(params_billion: float) -> tuple[str, int, int]:
    """(class, LoRA bytes, full bytes) for a model size; beyond 14B scales the last row."""
    for name, bound, lora, full in VRAM_TABLE:
        if params_billion < bound:
            return name, lora * GiB, full * GiB
    name, bound, lora, full = VRAM_TABLE[-1]
    scale = params_billion / bound
    return f">{bound:g}B", int(lora * scale * GiB), int(full * scale * GiB)
