"""The chat worker's loaded models: an LRU cache bounded by bytes, per device by what is free there.

The chat worker's loop (worker/chat.py) asks :class:`ModelCache` for the model of a target on a
device; the cache loads it through its files opened against the allowed roots, evicting the least
recently used models to make room. It is bounded by ``max_bytes`` (all models together) and, per
device, by what is free there minus ``headroom_bytes`` (host memory from psutil on the CPU,
``torch.cuda.mem_get_info`` on a GPU, both measured in this process, so a training job's memory is
seen as used). A model that cannot fit is :class:`Refused` with a sentence.
"""
from __future__ import annotations

import collections
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import ResourceExhausted
from ..paths import pin_input
from .generate import estimate_hf_bytes

__all__ = ["SPEC_PATHS", "Refused", "Entry", "ModelCache", "free_bytes"]

SPEC_PATHS = ("model_dir", "adapter_dir", "tokenizer_dir", "model_path", "lora_path")  # the files a target opens

log = logging.getLogger("modxd.inference")

GiB = 1024**3


class Refused(Exception):
    """A chat that cannot be served; ``code`` names the domain error the daemon answers with (errors.BY_CODE)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _gib(n: float) -> str:
    if n >= 1024 * GiB:
        return f"{n / (1024 * GiB):,.0f} TiB"
    return f"{n / GiB:.2f} GiB" if n >= GiB / 10 else f"{n / 1024**2:.1f} MiB"


@dataclass
class Entry:
    key: str
    model: Any  # HFChatModel or LlamaChatModel
    spec: dict[str, Any]
    device: str
    memory_bytes: int
    loaded_time: float = field(default_factory=time.time)
    last_used_time: float = field(default_factory=time.time)

    def describe(self) -> dict[str, Any]:
        return {"key": self.key, "task_id": self.spec.get("task_id", ""), "target": self.spec.get("target", ""),
                "backend": self.model.backend, "device": self.device, "memory_bytes": self.memory_bytes,
                "last_used_time": self.last_used_time}


def free_bytes(device: str) -> int:
    """What can still be allocated on ``device``, seen from this process."""
    if device.startswith("cuda"):
        import torch

        index = int(device.split(":", 1)[1]) if ":" in device else 0
        free, _total = torch.cuda.mem_get_info(index)
        return int(free)
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:  # pragma: no cover - psutil is a dependency
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    return 0


class ModelCache:
    """Loaded models by key, least recently used first."""

    def __init__(self, max_bytes: int, headroom_bytes: int, threads: int = 0,
                 free: Callable[[str], int] = free_bytes) -> None:
        self.max_bytes = max_bytes
        self.headroom_bytes = headroom_bytes
        self.threads = threads
        self.free = free
        self.entries: "collections.OrderedDict[str, Entry]" = collections.OrderedDict()
        self.in_use: str | None = None
        self.doomed: set[str] = set()  # unload once the reply in progress ends

    @property
    def total(self) -> int:
        return sum(e.memory_bytes for e in self.entries.values())

    def evict(self, key: str) -> bool:
        entry = self.entries.pop(key, None)
        if entry is None:
            return False
        self.doomed.discard(key)
        try:
            entry.model.close()
        finally:
            entry.model = None
            _release_memory(entry.device)
        log.info("unloaded %s (%s)", key, _gib(entry.memory_bytes))
        return True

    def unload(self, key: str) -> int:
        """Unload ``key`` ("" = all); a model in use goes when its reply ends. Returns the count."""
        keys = list(self.entries) if not key else [key] if key in self.entries else []
        count = 0
        for k in keys:
            if k == self.in_use:
                self.doomed.add(k)
            else:
                self.evict(k)
            count += 1
        return count

    def release_device(self, device: str) -> int:
        return self.unload_where(lambda e: e.device == device)

    def unload_where(self, test: Callable[[Entry], bool]) -> int:
        return sum(self.unload(e.key) for e in list(self.entries.values()) if test(e))

    def after_use(self) -> None:
        self.in_use = None
        for key in list(self.doomed):
            self.evict(key)

    def _estimate(self, spec: dict[str, Any], device: str) -> int:
        if spec["backend"] == "gguf":
            from .llamacpp import estimate_gguf_bytes

            return estimate_gguf_bytes(spec["model_path"], spec.get("lora_path") or None)
        return estimate_hf_bytes(spec["model_dir"], spec.get("adapter_dir") or None, device)

    def get(self, spec: dict[str, Any], device: str, context: dict[str, Any]) -> tuple[Entry, bool]:
        """The loaded model for ``spec`` on ``device`` (loading it, evicting others to make room)."""
        key = f"{spec['key']}@{device}"
        if key in self.entries:
            self.entries.move_to_end(key)
            entry = self.entries[key]
            self.doomed.discard(key)
            return entry, True
        if spec["backend"] == "gguf":
            from .llamacpp import gpu_offload_supported

            if device.startswith("cuda") and not gpu_offload_supported():
                device = "cpu"  # this llama.cpp build has no GPU offload
                key = f"{spec['key']}@cpu"
                if key in self.entries:
                    self.entries.move_to_end(key)
                    return self.entries[key], True
        need = self._estimate(spec, device)
        self._make_room(need, device, context)
        model = self._load(spec, device)
        entry = Entry(key, model, spec, getattr(model, "device", device), int(model.memory_bytes))
        self.entries[entry.key] = entry
        log.info("loaded %s on %s (%s)", entry.key, entry.device, _gib(entry.memory_bytes))
        return entry, False

    def _make_room(self, need: int, device: str, context: dict[str, Any]) -> None:
        if need > self.max_bytes:
            raise Refused(ResourceExhausted.code,
                          f"the model needs about {_gib(need)}, more than the chat model cache may hold "
                          f"({_gib(self.max_bytes)}, chat_cache_bytes in the daemon's config)")
        for key in list(self.entries):  # least recently used first
            if self.total + need <= self.max_bytes:
                break
            self.evict(key)
        on_device = [k for k, e in self.entries.items() if e.device == device]
        while True:
            free = self.free(device)
            if need + self.headroom_bytes <= free:
                return
            if not on_device:
                break
            self.evict(on_device.pop(0))
        training = context.get("training_task") or ""
        where = "the CPU (host memory)" if device == "cpu" else device
        beside = f" beside the training job of task {training}" if training else ""
        if training and device != "cpu":
            hint = (" Wait for the training to finish, or chat on the CPU (ChatRequest.device "
                    "DEVICE_PREFERENCE_CPU, `modxctl chat --device cpu`).")
        elif training:
            hint = (" Wait for the training to finish, unload other models (InferenceService.UnloadModel, "
                    "`modxctl models unload`) or use a smaller one.")
        else:
            hint = (" Unload other models (InferenceService.UnloadModel, `modxctl models unload`) or use a "
                    "smaller one.")
        raise Refused(ResourceExhausted.code,
                      f"the model does not fit on {where}{beside}: it needs about {_gib(need)} plus "
                      f"{_gib(self.headroom_bytes)} kept free, and {_gib(max(free, 0))} is free.{hint}")

    def _load(self, spec: dict[str, Any], device: str) -> Any:
        """Load a target through its files opened and checked against the roots (modxd/paths.py)."""
        with contextlib.ExitStack() as pins:
            opened = {key: pins.enter_context(pin_input(f"{spec['target']} ({key})", str(spec[key]),
                                                        directory=key.endswith("_dir"))).path
                      for key in SPEC_PATHS if spec.get(key)}
            if spec["backend"] == "gguf":
                from .llamacpp import LlamaChatModel

                return LlamaChatModel.load(opened["model_path"], device, opened.get("lora_path"),
                                           threads=self.threads)
            from .generate import HFChatModel

            return HFChatModel.load(opened["model_dir"], device, opened.get("adapter_dir"),
                                    opened.get("tokenizer_dir"), spec.get("chat_template") or "")

    def describe(self) -> list[dict[str, Any]]:
        return [e.describe() for e in self.entries.values()]

    def clear(self) -> None:
        for key in list(self.entries):
            self.evict(key)


def _release_memory(device: str) -> None:
    import gc

    gc.collect()
    if device.startswith("cuda"):
        try:
            import torch

            torch.cuda.empty_cache()
        except Exception:  # noqa: BLE001
            pass
