"""The inference worker (kind ``inference``): one long-lived process that holds the loaded
models and answers chats.

Requests are served **one at a time, in arrival order**: on one device a second
generation in parallel would only share the same compute (each would stream at about
half speed) while doubling the memory for activations, and a CPU host has no spare cores.
Commands that need no model (``list``, ``cancel``, ``unload`` of a model not in use) are
answered between two tokens of the generation in progress; the next chat waits.

Commands from the daemon (``poll_command``; the messages are modxd/protocol.py's):

* ``Chat`` -> ``Loaded``, ``Delta`` messages, then one ``Done`` or ``ChatError``;
* ``Cancel`` -> the generation stops before its next token (a queued chat is dropped);
  the ``Done`` says ``cancelled``;
* ``ListModels`` -> ``Models``;
* ``Unload`` (key "" = all) -> ``Models`` (unasked), then ``Unloaded``;
* ``ReleaseDevice``: a training job starts there, drop what is cached on it (the model in
  use is dropped when its reply ends);
* ``Stop`` (also what a closed pipe means): return.

Every message back names the ``request_id`` it answers. The models themselves (loading,
the LRU cache and its memory bounds, generation) are the engine's: engine/model_cache.py and
engine/generate.py; this module is the worker's loop around them.
"""
from __future__ import annotations

import collections
import logging
import os
import time
from typing import Any, Callable

from ..engine.sampling import SamplingError, check_messages, check_sampling
from ..engine.model_cache import GiB, ModelCache, Refused
from ..engine.models import EngineError
from ..errors import INTERNAL, FailedPrecondition, InvalidArgument, PermissionDenied, ResourceExhausted
from ..hardware import usable_cpu_count
from ..protocol import (Cancel, Chat, ChatError, Command, Delta, Done, Emit, ListModels, Loaded, Log, Models, Poll,
                        Ready, ReleaseDevice, Stop, Unload, Unloaded)
from .runtime import describe_failure

log = logging.getLogger("modxd.inference")

STREAM_WINDOW_SECONDS = 0.010  # at most one delta message per 10 ms (see DeltaBatcher)


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
            self.emit(Delta(self.request_id, self.text, self.ids))
            self.text, self.ids = "", []
            self.last = time.perf_counter()


def default_threads() -> int:
    """Compute threads: about the physical cores (half the logical ones), at least 1, at most 8.

    llama.cpp spins its threads between tokens, so using every logical CPU of a busy host
    (training beside chat, or two cores) makes it several times slower, not faster."""
    return max(1, min(8, usable_cpu_count() // 2))


class InferenceServer:
    def __init__(self, config: dict[str, Any], emit: Emit, poll_command: Poll) -> None:
        self.emit = emit
        self.poll = poll_command
        self.threads = int(config.get("threads") or 0) or default_threads()
        self.cache = ModelCache(int(config.get("max_bytes") or 8 * GiB), int(config.get("headroom_bytes") or 0),
                                self.threads)
        self.max_new_tokens_limit = int(config.get("max_new_tokens_limit") or 4096)
        self.pending: collections.deque[Chat] = collections.deque()
        self.stopping = False
        self.served = 0

    def run(self) -> dict[str, Any]:
        try:
            import torch

            torch.set_num_threads(self.threads)
        except Exception:  # noqa: BLE001
            pass
        self.emit(Ready(os.getpid()))
        while not self.stopping:
            command = self.pending.popleft() if self.pending else self.poll(None)
            if command is None:
                continue
            if isinstance(command, Chat):
                self.chat(command)
            else:
                self.handle(command, current=None)
        self.cache.clear()
        return {"served": self.served}

    def handle(self, command: Command, current: str | None) -> bool:
        """A non-chat command (or a chat to queue); True when it cancels ``current``."""
        if isinstance(command, Chat):
            self.pending.append(command)
        elif isinstance(command, Cancel):
            rid = command.request_id
            if rid == current:
                return True
            for queued in list(self.pending):
                if queued.request_id == rid:
                    self.pending.remove(queued)
                    self.emit(Done(rid, "cancelled", prompt_tokens=0, completion_tokens=0, time_to_first_token_ms=0.0,
                                   tokens_per_second=0.0, text="", model_key=""))
        elif isinstance(command, ListModels):
            self.emit(Models(command.request_id, self.cache.describe(), self.cache.max_bytes))
        elif isinstance(command, Unload):
            count = self.cache.unload(command.key)
            self.snapshot()  # first: the daemon has the new list when the answer arrives
            self.emit(Unloaded(command.request_id, count))
        elif isinstance(command, ReleaseDevice):
            if self.cache.release_device(command.device):
                self.snapshot()
        elif isinstance(command, Stop):
            self.stopping = True
            return current is not None
        else:  # decoded against this worker's vocabulary (protocol.COMMANDS), so a new command lacks its branch
            raise TypeError(f"the chat worker has no handling for the {command.TYPE!r} command")
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

    def chat(self, command: Chat) -> None:
        self.served += 1
        end = self._answer(command, command.request_id)
        self.snapshot()  # first: the daemon has the new list when the answer arrives
        self.emit(end)

    def _answer(self, command: Chat, rid: str) -> Done | ChatError:
        """Stream the reply; returns the final message (``Done`` or ``ChatError``)."""
        def refused(code: str, message: str) -> ChatError:
            return ChatError(rid, code, message)

        try:
            messages = check_messages(command.messages, "")
            sampling = check_sampling(command.sampling, self.max_new_tokens_limit)
            started = time.perf_counter()
            entry, cached = self.cache.get(command.model, command.device or "cpu",
                                           {"training_task": command.training_task})
            load_ms = (time.perf_counter() - started) * 1000.0
            self.cache.in_use = entry.key
            entry.last_used_time = time.time()
            self.emit(Loaded(rid, entry.key, cached, load_ms, entry.device))

            deltas = DeltaBatcher(self.emit, rid)
            try:
                result = entry.model.generate(messages, sampling, deltas, self._should_stop(rid))
                deltas.flush()
            finally:
                entry.last_used_time = time.time()
                self.cache.after_use()
            return Done(rid, model_key=entry.key, cached=cached, load_ms=load_ms, **result)
        except Refused as exc:
            return refused(exc.code, str(exc))
        except SamplingError as exc:  # ContextTooLong too
            return refused(InvalidArgument.code, str(exc))
        except (FileNotFoundError, EngineError, FailedPrecondition) as exc:
            return refused(FailedPrecondition.code, str(exc))
        except PermissionDenied as exc:  # a target that now leads outside the allowed roots
            return refused(PermissionDenied.code, str(exc))
        except Exception as exc:  # noqa: BLE001 - one failed chat never ends the worker
            sentence = describe_failure(exc)
            code = ResourceExhausted.code if sentence.startswith("out of memory") else INTERNAL
            if code == ResourceExhausted.code:
                self.cache.clear()  # give the memory back before anything else runs
            log.exception("chat %s failed", rid)
            return refused(code, f"the chat failed: {sentence}")

    def snapshot(self) -> None:
        """What is loaded now (the daemon answers ListLoadedModels from the latest one)."""
        self.emit(Models("", self.cache.describe(), self.cache.max_bytes))


def run_inference(config: dict[str, Any], emit: Emit, poll_command: Poll) -> dict[str, Any]:
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
            self._emit(Log(record.levelname.lower(), record.getMessage()[:4000]))
        except Exception:  # noqa: BLE001 - logging never breaks a chat
            pass
