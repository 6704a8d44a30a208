"""The one inference worker that answers chats, on the daemon side.

The daemon never imports torch: every model lives in one long-lived worker process
(kind ``inference``, modxd.worker.chat) that holds an LRU cache of loaded
models and answers one chat at a time (see that module for why). What a chat loads and
where is decided before it gets here (modxd/chat.py). The manager

* starts the worker on the first chat, routes its messages to per-request queues, tells
  it to stop generating when a client cancels or disconnects, and when it dies answers the
  chats in flight UNAVAILABLE with a sentence (the next chat starts a new worker);
* refuses a chat past ``chat_queue_max`` with RESOURCE_EXHAUSTED;
* tells the worker to drop what it cached on an accelerator when a training job starts
  there, so a chat model never takes memory a starting training job needs;
* stops it on shutdown.
"""
from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable

import structlog

from ..config import Config
from ..errors import FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted, Unavailable, error_for, quote
from ..protocol import (Cancel, Chat, ChatError, Delta, Done, Failure, Loaded, Log, Models, ProtocolError, Ready,
                        ReleaseDevice, Result, Stop, Unload, Unloaded, encode)
from ..worker.spawn import WorkerHandle, exit_reason, spawn_worker

log = structlog.get_logger("modxd.inference")

GiB = 1024**3
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


@dataclass(frozen=True)
class _WorkerGone:
    """Put in a request's queue when the worker died before answering it (not a protocol message)."""

    message: str


@dataclass(frozen=True)
class _Broken:
    """Put in a request's queue when the worker's answer to it did not decode: the chat fails INTERNAL."""

    message: str


@dataclass
class _Request:
    queue: asyncio.Queue  # Delta, Loaded, Done, ChatError, Models, Unloaded of this request; _WorkerGone, _Broken
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
    """The inference worker of one daemon and the chats it is answering (``app.inference``)."""

    def __init__(self, settings: ChatSettings, devices: list[str], busy_devices: Callable[[], dict[str, str]]) -> None:
        self.settings = settings
        self.devices = list(devices)  # the accelerators whose memory the model cache may use
        self.busy_devices = busy_devices  # device -> the task training there (the supervisor's)
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
        """Worker messages -> the queue of the request they answer; the worker's end -> UNAVAILABLE.

        A message that did not decode is logged with its type and, when it names a request, fails
        that chat (INTERNAL: a bug in modx). One for a request that is gone (answered, or its client
        left) is expected: the worker may still be finishing it."""
        reports = worker.handle.reports
        while (message := await reports.get()) is not None:
            if isinstance(message, ProtocolError):
                log.error("inference_worker_message_malformed", message_type=message.message_type,
                          request_id=message.request_id, error=str(message))
                broken = self._requests.get(message.request_id)
                if broken is not None and not broken.abandoned:
                    broken.queue.put_nowait(_Broken(f"the inference worker sent a message the daemon does not "
                                                    f"understand ({message}); this is a bug in modx"))
                continue
            if isinstance(message, Models) and not message.request_id:
                self._models = list(message.models)
                continue
            if isinstance(message, Log):
                log.info("inference_worker_log", level=message.level, message=message.message)
                continue
            if isinstance(message, Failure):
                worker.error = message.error
                log.error("inference_worker_failed", error=worker.error, traceback=message.traceback)
                continue
            if isinstance(message, (Ready, Result)):
                continue
            rid = message.request_id  # every other chat report answers a request
            request = self._requests.get(rid)
            if request is None:
                continue
            if request.abandoned:
                if isinstance(message, (Done, ChatError, Models, Unloaded)):
                    self._requests.pop(rid, None)
                    if isinstance(message, Done):
                        log.info("chat_done", request_id=rid, finish_reason=message.finish_reason,
                                 completion_tokens=message.completion_tokens, abandoned=True)
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
                    request.queue.put_nowait(_WorkerGone(reason))
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
                        worker.handle.send(ReleaseDevice(device))
            seen = busy
            await asyncio.sleep(DEVICE_POLL_SECONDS)

    async def shutdown(self, timeout: float = 10.0) -> None:
        self._closing = True
        if self._watcher is not None:
            self._watcher.cancel()
        worker = self._worker
        if worker is None or worker.dead:
            return
        worker.handle.send(Stop())
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
            request.worker.handle.send(Cancel(rid))
        else:
            self._requests.pop(rid, None)

    def active_chats(self) -> int:
        return sum(1 for r in self._requests.values() if not r.abandoned)

    async def chat(self, spec: dict[str, Any], where: str, training: str, checked: list[dict[str, str]],
                   checked_sampling: dict[str, Any], on_request: Callable[[str], None] | None = None
                   ) -> AsyncIterator[dict[str, Any]]:
        """Stream a reply: ``delta`` dicts, then one ``done`` dict (ModxError on a refusal).

        The request was checked and placed by modxd/chat.py: `spec` is the model to load, `where`
        the device, `training` the task training there (or "")."""
        task_id = spec["task_id"]
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
        worker.handle.send(Chat(rid, spec, where, checked, checked_sampling, training_task=training))
        finished = False
        first: float | None = None
        held: Any = None
        try:
            while True:
                message, held = (held, None) if held is not None else (await request.queue.get(), None)
                if isinstance(message, Delta):
                    if first is None:
                        first = time.perf_counter()
                    # Tokens that arrived while the client took the last message go out together.
                    text, token_ids = message.text, list(message.token_ids)
                    while not request.queue.empty():
                        more = request.queue.get_nowait()
                        if not isinstance(more, Delta):
                            held = more
                            break
                        text, token_ids = text + more.text, token_ids + list(more.token_ids)
                    yield {"type": Delta.TYPE, "request_id": rid, "text": text, "token_ids": token_ids}
                elif isinstance(message, Loaded):
                    log.info("chat_model", request_id=rid, model_key=message.model_key, cached=message.cached,
                             load_ms=round(message.load_ms, 1), device=message.device)
                elif isinstance(message, Done):
                    finished = True
                    first = first or time.perf_counter()
                    done = {**encode(message), "worker_time_to_first_token_ms": message.time_to_first_token_ms,
                            "time_to_first_token_ms": (first - request.started) * 1000.0}
                    log.info("chat_done", request_id=rid, task_id=task_id, target=spec.get("target"),
                             finish_reason=message.finish_reason, prompt_tokens=message.prompt_tokens,
                             completion_tokens=message.completion_tokens,
                             tokens_per_second=round(message.tokens_per_second, 2),
                             ttft_ms=round(done["time_to_first_token_ms"], 2),
                             worker_ttft_ms=round(message.time_to_first_token_ms, 2))
                    yield done
                    return
                elif isinstance(message, ChatError):
                    finished = True
                    sentence = message.message or "the chat failed"
                    log.info("chat_refused", request_id=rid, code=message.code, message=sentence)
                    error = error_for(message.code, sentence)  # errors.BY_CODE
                    if error is None:  # a bug or a library failure: INTERNAL, with the worker's sentence
                        raise RuntimeError(sentence)
                    raise error
                elif isinstance(message, _WorkerGone):
                    finished = True
                    raise Unavailable(f"the inference worker stopped while answering ({message.message}); "
                                      "send the message again: the next chat starts a new worker")
                elif isinstance(message, _Broken):
                    finished = True
                    raise RuntimeError(message.message)  # INTERNAL: a bug in modx, with the sentence that names it
                else:  # an answer of another kind to this chat's id: the same kind of bug
                    finished = True
                    raise RuntimeError(f"the inference worker answered chat {rid} with a {message.TYPE!r} message; "
                                       "this is a bug in modx")
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
        worker.handle.send(Unload(rid, key))
        try:
            message = await asyncio.wait_for(request.queue.get(), timeout)
        except asyncio.TimeoutError:
            raise Unavailable("the inference worker did not answer within "
                              f"{timeout:.0f}s (it may be loading a large model); try again") from None
        finally:
            self._requests.pop(rid, None)
        if isinstance(message, _WorkerGone):
            raise Unavailable(f"the inference worker stopped ({message.message})")
        if not isinstance(message, Unloaded):  # _Broken, or an answer of another kind: a bug in modx
            raise RuntimeError(getattr(message, "message", "") or f"the inference worker answered an unload with a "
                               f"{message.TYPE!r} message; this is a bug in modx")
        count = message.count
        if key and count == 0:
            raise NotFound(f"no model is loaded with key {quote(key)} (see ListLoadedModels)")
        return count
