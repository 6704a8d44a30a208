"""Chat on the daemon side: what to load, where, and the one inference worker that runs it.

The daemon never imports torch: every model lives in one long-lived worker process
(kind ``inference``, modxd.engine.inference_worker) that holds an LRU cache of loaded
models and answers one chat at a time (see that module for why). This module

* resolves a chat's target (a checkpoint, the base model, a package) to what the worker
  loads, and checks the request (sampling, messages) with sentences;
* picks the device: the CPU when asked, else a free accelerator, else the accelerator a
  training job holds (the worker then checks the model fits beside it: free memory minus
  ``chat_headroom_bytes``, or RESOURCE_EXHAUSTED with a sentence);
* starts the worker on the first chat, routes its messages to per-request queues, tells
  it to stop generating when a client cancels or disconnects, and when it dies answers the
  chats in flight UNAVAILABLE with a sentence (the next chat starts a new worker);
* tells the worker to drop what it cached on an accelerator when a training job starts
  there, so a chat model never takes memory a starting training job needs;
* stops it on shutdown.
"""
from __future__ import annotations

import asyncio
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable

import structlog

from ..engine.sampling import SamplingError, check_messages, check_sampling
from ..engine.inference_worker import SPEC_PATHS
from ..config import Config
from ..errors import (FailedPrecondition, InvalidArgument, ModxError, NotFound, PermissionDenied, ResourceExhausted,
                      Unavailable, quote)
from ..paths import check_input_under_roots
from ..store.checkpoints import BASE_REF
from .process import WorkerHandle, exit_reason, spawn_worker

log = structlog.get_logger("modxd.inference")

GiB = 1024**3
CODES: dict[str, type[ModxError]] = {
    "invalid_argument": InvalidArgument,
    "failed_precondition": FailedPrecondition,
    "resource_exhausted": ResourceExhausted,
    "not_found": NotFound,
    "permission_denied": PermissionDenied,
}
# Which model file of a package a chat uses: the most precise one it has.
QUANT_PREFERENCE = ("F32", "BF16", "F16", "Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q5_0", "Q4_K_M", "Q4_K_S", "Q4_0",
                    "Q3_K_L", "Q3_K_M", "Q3_K_S", "Q2_K")
MERGED_REFS = ("merged", "final")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
DEVICE_POLL_SECONDS = 1.0


@dataclass(frozen=True)
class ChatSettings:
    """The inference worker's settings: the daemon's `chat_*` keys and max_chat_tokens (their
    defaults, types, ranges and MODX_CHAT_* overrides are modxd/config.py's)."""

    cache_bytes: int  # 0: half the host memory plus half of each accelerator's
    headroom_bytes: int  # kept free on a device beside a chat model
    queue_max: int  # chats answered or waiting at once
    threads: int  # compute threads of the worker (0: the worker picks)
    max_new_tokens: int

    @classmethod
    def from_config(cls, config: Config) -> "ChatSettings":
        return cls(cache_bytes=config.chat_cache_bytes, headroom_bytes=config.chat_headroom_bytes,
                   queue_max=config.chat_queue_max, threads=config.chat_threads,
                   max_new_tokens=config.max_chat_tokens)


def auto_cache_bytes(devices: list[str]) -> int:
    from ..hardware import detect_gpus, host_memory_bytes

    total = host_memory_bytes() // 2 or 8 * GiB
    wanted = {d for d in devices if d.startswith("cuda")}
    for gpu in detect_gpus():
        if gpu.device in wanted:
            total += gpu.total_memory_bytes // 2
    return total


# ----- requests ----------------------------------------------------------------------------------

def sampling_from_fields(fields: dict[str, Any], max_new_tokens: int) -> dict[str, Any]:
    """Checked sampling settings (defaults for the unset ones), or InvalidArgument."""
    try:
        return check_sampling(fields, max_new_tokens)
    except SamplingError as exc:
        raise InvalidArgument(str(exc)) from None


def checked_messages(messages: list[dict[str, str]], system_prompt: str) -> list[dict[str, str]]:
    try:
        return check_messages(messages, system_prompt)
    except SamplingError as exc:
        raise InvalidArgument(str(exc)) from None


def choose_device(preference: str, devices: list[str], busy: dict[str, str]) -> tuple[str, str]:
    """(device, the task training there or ""). `preference`: "", "cpu" or "accelerator"."""
    accelerators = [d for d in devices if d != "cpu"]
    if preference == "cpu":
        return "cpu", busy.get("cpu", "")
    if preference == "accelerator" and not accelerators:
        raise FailedPrecondition("this daemon has no accelerator (its devices: "
                                 f"{', '.join(devices) or 'cpu'}); chat on the CPU or leave the device to the daemon")
    if not accelerators:
        return "cpu", busy.get("cpu", "")
    free = [d for d in accelerators if d not in busy]
    device = free[0] if free else accelerators[0]
    return device, busy.get(device, "")


def _has_tokenizer(path: str) -> bool:
    return any(os.path.isfile(os.path.join(path, name)) for name in TOKENIZER_FILES)


async def resolve_target(app: Any, task_id: str, checkpoint: str = "", package_id: str = "",
                         base: bool = False) -> dict[str, Any]:
    """The model spec of a chat target, its paths checked against the allowed roots (the inference
    worker checks them again when it opens them)."""
    spec = await _resolve_target(app, task_id, checkpoint, package_id, base)
    for key in SPEC_PATHS:
        if spec.get(key):
            await asyncio.to_thread(check_input_under_roots, f"{spec['target']} ({key})", str(spec[key]),
                                    app.config.roots)
    return spec


async def _resolve_target(app: Any, task_id: str, checkpoint: str = "", package_id: str = "",
                          base: bool = False) -> dict[str, Any]:
    """What the worker loads for a chat with `task_id`: its model spec (paths checked on disk).

    No target: the task's latest checkpoint. The base model: `base`, or the checkpoint reference
    "base" (an evaluation's best may be the base model).
    """
    task = await app.tasks.get(task_id)
    params = task.params
    model_dir = str(params.get("model_dir") or "")
    tokenizer_dir = str(params.get("tokenizer_dir") or "") or model_dir
    chat_template = str(params.get("chat_template") or "")
    spec: dict[str, Any] = {"task_id": task.id, "backend": "hf", "chat_template": chat_template}
    if package_id:
        return await _package_spec(app, task.id, package_id.strip(), spec)
    if base or checkpoint.strip().lower() == BASE_REF:
        if not os.path.isfile(os.path.join(model_dir, "config.json")):
            raise FailedPrecondition(f"the base model of task {task.id} ({model_dir}) is missing on disk")
        return {**spec, "key": f"{task.id}/base", "target": "base", "model_dir": model_dir,
                "tokenizer_dir": tokenizer_dir}
    ref = checkpoint.strip()
    if ref.lower() in MERGED_REFS:
        path = os.path.join(str(params.get("output_dir") or ""), "merged")
        if not os.path.isfile(os.path.join(path, "config.json")):
            raise FailedPrecondition(f"task {task.id} has no merged model ({path}); chat with a checkpoint")
        label, ckpt_dir = "merged", path
    else:
        if ref:
            ckpt = await app.checkpoints.find(task.id, ref)
        else:
            ckpt = await app.checkpoints.latest(task.id)
            if ckpt is None:
                raise FailedPrecondition(f"task {task.id} has no checkpoint yet: chat with its base model "
                                         "(base, modxctl chat --base) or wait for the first checkpoint")
        label, ckpt_dir = ckpt.id, ckpt.path
    if not os.path.isdir(ckpt_dir):
        raise FailedPrecondition(f"checkpoint {label} of task {task.id}: {ckpt_dir} is missing on disk")
    tokenizer = ckpt_dir if _has_tokenizer(ckpt_dir) else tokenizer_dir
    if os.path.isfile(os.path.join(ckpt_dir, "adapter_config.json")):
        if not os.path.isfile(os.path.join(model_dir, "config.json")):
            raise FailedPrecondition(f"checkpoint {label} of task {task.id} is a LoRA adapter, and its base model "
                                     f"{model_dir} is missing on disk")
        return {**spec, "key": f"{task.id}/{label}", "target": f"checkpoint {label}", "model_dir": model_dir,
                "adapter_dir": ckpt_dir, "tokenizer_dir": tokenizer}
    if not os.path.isfile(os.path.join(ckpt_dir, "config.json")):
        raise FailedPrecondition(f"checkpoint {label} of task {task.id} ({ckpt_dir}) holds neither a LoRA adapter "
                                 "nor a model (no adapter_config.json or config.json)")
    return {**spec, "key": f"{task.id}/{label}", "target": f"checkpoint {label}", "model_dir": ckpt_dir,
            "tokenizer_dir": tokenizer}


async def _package_spec(app: Any, task_id: str, package_id: str, spec: dict[str, Any]) -> dict[str, Any]:
    job = await app.jobs.get(package_id, "package")
    if job.task_id != task_id:
        raise NotFound(f"package {package_id} belongs to task {job.task_id}, not {task_id}")
    if job.state != "completed":
        why = f" ({job.state_reason})" if job.state_reason else ""
        raise FailedPrecondition(f"package {package_id} is {job.state}{why}: only a completed package can chat")
    files = job.result.get("files") or []
    models = [f for f in files if f.get("kind") == "model"]
    if not models:
        raise FailedPrecondition(f"package {package_id} lists no model file")

    def rank(f: dict[str, Any]) -> int:
        q = str(f.get("quant_type") or "")
        return QUANT_PREFERENCE.index(q) if q in QUANT_PREFERENCE else len(QUANT_PREFERENCE)

    model = min(models, key=rank)
    adapters = [f for f in files if f.get("kind") == "adapter"]
    merged = bool(job.result.get("merged", job.request.get("merge", True)))
    adapter = adapters[0] if adapters and not merged else None
    for f in [model] + ([adapter] if adapter else []):
        if not os.path.isfile(str(f.get("path") or "")):
            raise FailedPrecondition(f"package {package_id}: its file {f.get('path')} is missing on disk")
    quant = str(model.get("quant_type") or "")
    return {**spec, "backend": "gguf", "key": f"{task_id}/{package_id}/{quant}",
            "target": f"package {package_id} {quant}" + (" + adapter" if adapter else ""),
            "model_path": str(model["path"]), "lora_path": str(adapter["path"]) if adapter else ""}


# ----- the worker ----------------------------------------------------------------------------------

@dataclass
class _Request:
    queue: asyncio.Queue
    worker: "_Worker"
    abandoned: bool = False
    started: float = field(default_factory=time.perf_counter)


@dataclass
class _Worker:
    handle: WorkerHandle
    dead: bool = False
    error: str = ""
    router: asyncio.Task | None = None


class InferenceManager:
    """The chats of one daemon (``app.inference``)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.settings = ChatSettings.from_config(app.config)
        self.devices = list(app.devices)
        self.busy_devices: Callable[[], dict[str, str]] = app.supervisor.busy_devices
        self._worker: _Worker | None = None
        self._lock = asyncio.Lock()
        self._requests: dict[str, _Request] = {}
        self._models: list[dict[str, Any]] = []
        self._cache_bytes = self.settings.cache_bytes
        self._watcher: asyncio.Task | None = None
        self._closing = False
        self.restarts = 0

    # ----- worker lifecycle

    async def _ensure_worker(self) -> _Worker:
        async with self._lock:
            if self._closing:
                raise Unavailable("the daemon is shutting down: no new chats")
            if self._worker is not None and not self._worker.dead:
                return self._worker
            if not self._cache_bytes:
                self._cache_bytes = await asyncio.to_thread(auto_cache_bytes, self.devices)
            config = {"max_bytes": self._cache_bytes, "headroom_bytes": self.settings.headroom_bytes,
                      "threads": self.settings.threads, "max_new_tokens_limit": self.settings.max_new_tokens}
            try:
                handle = spawn_worker("inference", config, "modx-inference")
            except Exception as exc:  # noqa: BLE001
                raise Unavailable(f"could not start the inference worker: {exc}") from None
            if self._worker is not None:
                self.restarts += 1
            worker = _Worker(handle)
            worker.router = asyncio.create_task(self._route(worker), name="inference-router")
            self._worker = worker
            self._models = []
            if self._watcher is None or self._watcher.done():
                self._watcher = asyncio.create_task(self._watch_devices(), name="inference-devices")
            log.info("inference_worker_started", pid=handle.process.pid, cache_bytes=self._cache_bytes)
            return worker

    async def _route(self, worker: _Worker) -> None:
        """Worker messages -> the queue of the request they answer; the worker's end -> UNAVAILABLE."""
        reports = worker.handle.reports
        while (message := await reports.get()) is not None:
            kind = message.get("type")
            rid = message.get("request_id") or ""
            if kind == "models" and not rid:
                self._models = list(message.get("models") or [])
                continue
            if kind == "log":
                log.info("inference_worker_log", level=message.get("level", "info"), message=message.get("message"))
                continue
            if kind == "error":
                worker.error = str(message.get("error") or "")
                log.error("inference_worker_failed", error=worker.error, traceback=message.get("traceback", ""))
                continue
            if kind in ("ready", "result"):
                continue
            request = self._requests.get(rid)
            if request is None:
                continue
            if request.abandoned:
                if kind in ("done", "chat_error", "models", "unloaded"):
                    self._requests.pop(rid, None)
                    if kind == "done":
                        log.info("chat_done", request_id=rid, finish_reason=message.get("finish_reason"),
                                 completion_tokens=message.get("completion_tokens"), abandoned=True)
                continue
            request.queue.put_nowait(message)
        worker.dead = True
        exitcode = await worker.handle.join()
        reason = worker.error or exit_reason(exitcode)
        if not self._closing:
            log.warning("inference_worker_exited", exitcode=exitcode, reason=reason)
        for rid, request in list(self._requests.items()):
            if request.worker is worker:
                self._requests.pop(rid, None)
                if not request.abandoned:
                    request.queue.put_nowait({"type": "worker_gone", "message": reason})
        if self._worker is worker:
            self._models = []

    async def _watch_devices(self) -> None:
        """A training job starting on an accelerator: the worker drops what it cached there."""
        seen: set[str] = set()
        while not self._closing:
            busy = {d for d in self.busy_devices() if d != "cpu"}
            worker = self._worker
            if worker is not None and not worker.dead:
                for device in busy - seen:
                    if any(m.get("device") == device for m in self._models):
                        log.info("inference_release_device", device=device, task_id=self.busy_devices().get(device))
                        worker.handle.send({"cmd": "release_device", "device": device})
            seen = busy
            await asyncio.sleep(DEVICE_POLL_SECONDS)

    async def shutdown(self, timeout: float = 10.0) -> None:
        self._closing = True
        if self._watcher is not None:
            self._watcher.cancel()
        worker = self._worker
        if worker is None or worker.dead:
            return
        worker.handle.send({"cmd": "stop"})
        try:
            await asyncio.wait_for(asyncio.shield(worker.router), timeout)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            if worker.handle.process.is_alive():
                log.warning("inference_worker_killed", pid=worker.handle.process.pid)
                worker.handle.process.kill()
                await worker.handle.join()

    @property
    def worker_pid(self) -> int | None:
        w = self._worker
        return w.handle.process.pid if w is not None and not w.dead else None

    # ----- requests

    def _register(self, worker: _Worker) -> tuple[str, _Request]:
        if worker.dead:  # it died between start and now: the caller tries a new one
            raise Unavailable(f"the inference worker stopped ({worker.error or 'it exited'}); send the message again")
        rid = uuid.uuid4().hex[:12]
        request = _Request(asyncio.Queue(), worker)
        self._requests[rid] = request
        return rid, request

    def cancel(self, rid: str) -> None:
        """The client went away or cancelled: stop generating for it (idempotent)."""
        request = self._requests.get(rid)
        if request is None or request.abandoned:
            return
        request.abandoned = True
        if not request.worker.dead:
            request.worker.handle.send({"cmd": "cancel", "request_id": rid})
        else:
            self._requests.pop(rid, None)

    def active_chats(self) -> int:
        return sum(1 for r in self._requests.values() if not r.abandoned)

    async def chat(self, task_id: str, messages: list[dict[str, str]], system_prompt: str = "",
                   sampling: dict[str, Any] | None = None, checkpoint: str = "", package_id: str = "",
                   base: bool = False, device: str = "",
                   on_request: Callable[[str], None] | None = None) -> AsyncIterator[dict[str, Any]]:
        """Stream a reply: ``delta`` dicts, then one ``done`` dict (ModxError on a refusal)."""
        checked_sampling = sampling_from_fields(sampling or {}, self.settings.max_new_tokens)
        checked = checked_messages(messages, system_prompt)
        spec = await resolve_target(self.app, task_id, checkpoint, package_id, base)
        where, training = choose_device(device, self.devices, self.busy_devices())
        if self.active_chats() >= self.settings.queue_max:
            raise ResourceExhausted(f"{self.active_chats()} chats are being answered or waiting, this daemon's "
                                    "limit (chat_queue_max); try again when one ends")
        worker = await self._ensure_worker()
        try:
            rid, request = self._register(worker)
        except Unavailable:
            worker = await self._ensure_worker()
            rid, request = self._register(worker)
        if on_request is not None:
            on_request(rid)
        worker.handle.send({"cmd": "chat", "request_id": rid, "model": spec, "device": where,
                            "messages": checked, "sampling": checked_sampling,
                            "context": {"training_task": training}})
        finished = False
        first: float | None = None
        held: dict[str, Any] | None = None
        try:
            while True:
                message, held = (held, None) if held is not None else (await request.queue.get(), None)
                kind = message.get("type")
                if kind == "delta":
                    if first is None:
                        first = time.perf_counter()
                    # Tokens that arrived while the client took the last message go out together.
                    while not request.queue.empty():
                        more = request.queue.get_nowait()
                        if more.get("type") != "delta":
                            held = more
                            break
                        message = {**message, "text": message["text"] + more["text"],
                                   "token_ids": list(message["token_ids"]) + list(more["token_ids"])}
                    yield message
                elif kind == "loaded":
                    log.info("chat_model", request_id=rid, model_key=message.get("model_key"),
                             cached=message.get("cached"), load_ms=round(message.get("load_ms", 0.0), 1),
                             device=message.get("device"))
                elif kind == "done":
                    finished = True
                    first = first or time.perf_counter()
                    message = {**message, "worker_time_to_first_token_ms": message.get("time_to_first_token_ms", 0.0),
                               "time_to_first_token_ms": (first - request.started) * 1000.0}
                    log.info("chat_done", request_id=rid, task_id=task_id, target=spec.get("target"),
                             finish_reason=message.get("finish_reason"), prompt_tokens=message.get("prompt_tokens"),
                             completion_tokens=message.get("completion_tokens"),
                             tokens_per_second=round(message.get("tokens_per_second", 0.0), 2),
                             ttft_ms=round(message["time_to_first_token_ms"], 2),
                             worker_ttft_ms=round(message["worker_time_to_first_token_ms"], 2))
                    yield message
                    return
                elif kind == "chat_error":
                    finished = True
                    sentence = str(message.get("message") or "the chat failed")
                    log.info("chat_refused", request_id=rid, code=message.get("code"), message=sentence)
                    error = CODES.get(message.get("code", ""))
                    if error is None:  # a bug or a library failure: INTERNAL, with the worker's sentence
                        raise RuntimeError(sentence)
                    raise error(sentence)
                elif kind == "worker_gone":
                    finished = True
                    raise Unavailable(f"the inference worker stopped while answering ({message.get('message')}); "
                                      "send the message again: the next chat starts a new worker")
        finally:
            if finished:
                self._requests.pop(rid, None)
            else:
                self.cancel(rid)

    # ----- cache

    def loaded_models(self) -> tuple[list[dict[str, Any]], int]:
        w = self._worker
        models = list(self._models) if w is not None and not w.dead else []
        return models, self._cache_bytes or self.settings.cache_bytes

    async def unload(self, key: str, timeout: float = 120.0) -> int:
        worker = self._worker
        if worker is None or worker.dead:
            if key:
                raise NotFound(f"no model is loaded with key {quote(key)} (none is loaded)")
            return 0
        rid, request = self._register(worker)
        worker.handle.send({"cmd": "unload", "request_id": rid, "key": key})
        try:
            message = await asyncio.wait_for(request.queue.get(), timeout)
        except asyncio.TimeoutError:
            raise Unavailable("the inference worker did not answer within "
                              f"{timeout:.0f}s (it may be loading a large model); try again") from None
        finally:
            self._requests.pop(rid, None)
        if message.get("type") == "worker_gone":
            raise Unavailable(f"the inference worker stopped ({message.get('message')})")
        count = int(message.get("count") or 0)
        if key and count == 0:
            raise NotFound(f"no model is loaded with key {quote(key)} (see ListLoadedModels)")
        return count
