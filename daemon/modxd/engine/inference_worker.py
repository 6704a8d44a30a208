"""The inference worker (kind ``inference``): one long-lived process that holds the loaded
models and answers chats.

Requests are served **one at a time, in arrival order**: on one device a second
generation in parallel would only share the same compute (each would stream at about
half speed) while doubling the memory for activations, and a CPU host has no spare cores.
Commands that need no model (``list``, ``cancel``, ``unload`` of a model not in use) are
answered between two tokens of the generation in progress; the next chat waits.

Commands (dicts from the daemon, ``poll_command``):

* ``{"cmd": "chat", "request_id", "model": {...}, "device", "messages", "sampling",
  "context": {...}}`` -> ``delta`` messages, then one ``done`` or ``chat_error``;
* ``{"cmd": "cancel", "request_id"}`` -> the generation stops before its next token (a
  queued chat is dropped); the ``done`` says ``cancelled``;
* ``{"cmd": "list", "request_id"}`` -> ``models``;
* ``{"cmd": "unload", "request_id", "key"}`` ("" = all) -> ``unloaded``;
* ``{"cmd": "release_device", "device"}``: a training job starts there, drop what is
  cached on it (the model in use is dropped when its reply ends);
* ``{"cmd": "stop"}`` (also what a closed pipe means): return.

Every message back carries ``type`` and ``request_id``. The cache is an LRU bounded by
``max_bytes`` (all models together) and, per device, by what is free there minus
``headroom_bytes`` (host memory from psutil on the CPU, ``torch.cuda.mem_get_info`` on a
GPU, both measured in this process, so a training job's memory is seen as used).
"""
from __future__ import annotations

import collections
import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import FailedPrecondition, PermissionDenied
from ..hardware import usable_cpu_count
from ..paths import pin_input
from .generate import SamplingError, check_messages, check_sampling, estimate_hf_bytes
from .models import EngineError

SPEC_PATHS = ("model_dir", "adapter_dir", "tokenizer_dir", "model_path", "lora_path")  # the files a target opens

log = logging.getLogger("modxd.inference")

Emit = Callable[[dict], None]
GiB = 1024**3
STREAM_WINDOW_SECONDS = 0.010  # at most one delta message per 10 ms (see DeltaBatcher)


class Refused(Exception):
    """A chat that cannot be served; ``code`` names the gRPC status the daemon answers with."""

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
            raise Refused("resource_exhausted",
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
        raise Refused("resource_exhausted",
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


class DeltaBatcher:
    """Sends streamed text to the daemon at most once per ``window`` seconds.

    The first piece goes at once (time to first token is never delayed), and so does any
    piece that comes ``window`` after the last message, which is every token of a model
    slower than that. A faster model's tokens go in groups: each pipe message costs the
    daemon a relay and a gRPC write (about 0.3 ms of CPU), which at hundreds of tokens per
    second on a small host would otherwise slow the generation it shares the CPU with.
    """

    def __init__(self, emit: Emit, request_id: str, window: float = STREAM_WINDOW_SECONDS) -> None:
        self.emit, self.request_id, self.window = emit, request_id, window
        self.text = ""
        self.ids: list[int] = []
        self.last = 0.0

    def __call__(self, text: str, ids: list[int]) -> None:
        self.text += text
        self.ids.extend(ids)
        if time.perf_counter() - self.last >= self.window:
            self.flush()

    def flush(self) -> None:
        if self.text or self.ids:
            self.emit({"type": "delta", "request_id": self.request_id, "text": self.text, "token_ids": self.ids})
            self.text, self.ids = "", []
            self.last = time.perf_counter()


def _release_memory(device: str) -> None:
    import gc

    gc.collect()
    if device.startswith("cuda"):
        try:
            import torch

            torch.cuda.empty_cache()
        except Exception:  # noqa: BLE001
            pass


def default_threads() -> int:
    """Compute threads: about the physical cores (half the logical ones), at least 1, at most 8.

    llama.cpp spins its threads between tokens, so using every logical CPU of a busy host
    (training beside chat, or two cores) makes it several times slower, not faster."""
    return max(1, min(8, usable_cpu_count() // 2))


class InferenceServer:
    def __init__(self, config: dict[str, Any], emit: Emit, poll_command: Callable[..., dict | None]) -> None:
        self.emit = emit
        self.poll = poll_command
        self.threads = int(config.get("threads") or 0) or default_threads()
        self.cache = ModelCache(int(config.get("max_bytes") or 8 * GiB), int(config.get("headroom_bytes") or 0),
                                self.threads)
        self.max_new_tokens_limit = int(config.get("max_new_tokens_limit") or 4096)
        self.pending: collections.deque[dict[str, Any]] = collections.deque()
        self.stopping = False
        self.served = 0

    def run(self) -> dict[str, Any]:
        try:
            import torch

            torch.set_num_threads(self.threads)
        except Exception:  # noqa: BLE001
            pass
        self.emit({"type": "ready", "pid": os.getpid()})
        while not self.stopping:
            command = self.pending.popleft() if self.pending else self.poll(None)
            if command is None:
                continue
            if command.get("cmd") == "chat":
                self.chat(command)
            else:
                self.handle(command, current=None)
        self.cache.clear()
        return {"served": self.served}

    def handle(self, command: dict[str, Any], current: str | None) -> bool:
        """A non-chat command (or a chat to queue); True when it cancels ``current``."""
        cmd = command.get("cmd")
        rid = command.get("request_id", "")
        if cmd == "chat":
            self.pending.append(command)
        elif cmd == "cancel":
            if rid == current:
                return True
            for queued in list(self.pending):
                if queued.get("cmd") == "chat" and queued.get("request_id") == rid:
                    self.pending.remove(queued)
                    self.emit({"type": "done", "request_id": rid, "finish_reason": "cancelled", "prompt_tokens": 0,
                               "completion_tokens": 0, "time_to_first_token_ms": 0.0, "tokens_per_second": 0.0,
                               "text": "", "model_key": ""})
        elif cmd == "list":
            self.emit({"type": "models", "request_id": rid, "models": self.cache.describe(),
                       "memory_limit_bytes": self.cache.max_bytes})
        elif cmd == "unload":
            count = self.cache.unload(command.get("key", ""))
            self.snapshot()  # first: the daemon has the new list when the answer arrives
            self.emit({"type": "unloaded", "request_id": rid, "count": count})
        elif cmd == "release_device":
            if self.cache.release_device(command.get("device", "")):
                self.snapshot()
        elif cmd == "stop":
            self.stopping = True
            return current is not None
        return False

    def _should_stop(self, rid: str) -> Callable[[], bool]:
        def check() -> bool:
            cancel = False
            while True:
                command = self.poll(0.0)
                if command is None:
                    return cancel
                cancel = self.handle(command, current=rid) or cancel
        return check

    def chat(self, command: dict[str, Any]) -> None:
        rid = command["request_id"]
        self.served += 1
        end = self._answer(command, rid)
        self.snapshot()  # first: the daemon has the new list when the answer arrives
        self.emit(end)

    def _answer(self, command: dict[str, Any], rid: str) -> dict[str, Any]:
        """Stream the reply; returns the final message (``done`` or ``chat_error``)."""
        def refused(code: str, message: str) -> dict[str, Any]:
            return {"type": "chat_error", "request_id": rid, "code": code, "message": message}

        try:
            messages = check_messages(command.get("messages") or [], command.get("system_prompt") or "")
            sampling = check_sampling(command.get("sampling") or {}, self.max_new_tokens_limit)
            started = time.perf_counter()
            entry, cached = self.cache.get(command["model"], command.get("device") or "cpu",
                                           command.get("context") or {})
            load_ms = (time.perf_counter() - started) * 1000.0
            self.cache.in_use = entry.key
            entry.last_used_time = time.time()
            self.emit({"type": "loaded", "request_id": rid, "model_key": entry.key, "cached": cached,
                       "load_ms": load_ms, "device": entry.device})

            deltas = DeltaBatcher(self.emit, rid)
            try:
                result = entry.model.generate(messages, sampling, deltas, self._should_stop(rid))
                deltas.flush()
            finally:
                entry.last_used_time = time.time()
                self.cache.after_use()
            return {"type": "done", "request_id": rid, "model_key": entry.key, "cached": cached, "load_ms": load_ms,
                    **result}
        except Refused as exc:
            return refused(exc.code, str(exc))
        except SamplingError as exc:  # ContextTooLong too
            return refused("invalid_argument", str(exc))
        except (FileNotFoundError, EngineError, FailedPrecondition) as exc:
            return refused("failed_precondition", str(exc))
        except PermissionDenied as exc:  # a target that now leads outside the allowed roots
            return refused("permission_denied", str(exc))
        except Exception as exc:  # noqa: BLE001 - one failed chat never ends the worker
            from ..jobs.worker import describe_failure

            sentence = describe_failure(exc)
            code = "resource_exhausted" if sentence.startswith("out of memory") else "internal"
            if code == "resource_exhausted":
                self.cache.clear()  # give the memory back before anything else runs
            log.exception("chat %s failed", rid)
            return refused(code, f"the chat failed: {sentence}")

    def snapshot(self) -> None:
        """What is loaded now (the daemon answers ListLoadedModels from the latest one)."""
        self.emit({"type": "models", "request_id": "", "models": self.cache.describe(),
                   "memory_limit_bytes": self.cache.max_bytes})


def run_inference(config: dict[str, Any], emit: Emit, poll_command: Callable[..., dict | None]) -> dict[str, Any]:
    """Worker entry point (kind ``inference``): serve chats until told to stop."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    handler = _EmitHandler(emit)
    for name in ("modxd.inference", "transformers", "peft", "llama_cpp"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.propagate = False
    log.setLevel(logging.INFO)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # no tqdm bars on the daemon's stderr
        hf_logging.set_verbosity_error()
    except ImportError:  # pragma: no cover
        pass
    return InferenceServer(config, emit, poll_command).run()


class _EmitHandler(logging.Handler):
    """Log records go to the daemon as ``log`` messages (it logs them with the worker's name)."""

    def __init__(self, emit: Emit) -> None:
        super().__init__(logging.INFO)
        self._emit = emit

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._emit({"type": "log", "level": record.levelname.lower(), "message": record.getMessage()[:4000]})
        except Exception:  # noqa: BLE001 - logging never breaks a chat
            pass
