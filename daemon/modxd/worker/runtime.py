"""The worker process: runs one job of the engine and reports over a pipe (worker/spawn.py starts it).

Started with the `spawn` method (CUDA cannot live in a forked child). It dies
with the daemon (PR_SET_PDEATHSIG) so a killed daemon never leaves an orphan
holding a GPU, and it treats a closed command pipe as a stop request.

The engine sees typed messages only (modxd/protocol.py): `emit(report)` encodes one onto the
pipe, `poll_command()` returns the daemon's next command decoded and checked against what this
kind of worker takes. A command that does not decode is a bug in the daemon: the next
`poll_command()` raises it, so the job fails with the sentence that names it.
"""
from __future__ import annotations

import ctypes
import errno
import importlib
import os
import queue
import signal
import sys
import threading
import traceback
from multiprocessing.connection import Connection
from typing import Any

from .. import paths
from ..config import format_cpu_list
from ..protocol import (DAEMON_GONE, Command, Failure, Log, ProtocolError, Report, Result, Stop, decode_command,
                        encode)

# kind -> "module:function"; each takes (config, emit, poll_command) and returns a result dict. The kinds
# are protocol.KINDS: each has its vocabulary of reports and commands there.
ENTRY_POINTS = {
    "train": "modxd.worker.launch:run_train_task",  # run_training / run_preference, in one process or one per device
    "eval": "modxd.engine.evaluate:run_evaluation",
    "package": "modxd.engine.export:run_package",
    "import_gguf": "modxd.engine.export:run_import",
    "inference": "modxd.worker.chat:run_inference",
}


def die_with_parent() -> None:
    """Be killed when the parent dies (PR_SET_PDEATHSIG): a worker or rank never outlives the process
    that started it, so a killed daemon leaves no orphan holding a GPU."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass


_OOM_MARKERS = ("out of memory", "can't allocate memory", "cannot allocate memory")


def _chain(exc: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen and len(seen) < 10:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def describe_failure(exc: BaseException) -> str:
    """The failure sentence the daemon stores: out-of-memory and disk-full are named as such."""
    from ..engine.checkpoints import is_disk_full  # stdlib only

    message = f"{type(exc).__name__}: {str(exc) or type(exc).__name__}"
    chain = _chain(exc)
    if getattr(exc, "disk_full", False):  # engine.checkpoints.DiskFull: already a full sentence
        return f"disk full: {exc}"
    if getattr(exc, "sentence", False):  # engine.finite.TrainingDiverged: "loss is NaN at step 12: ..."
        return str(exc)
    if is_disk_full(exc):
        return f"disk full: {message}"
    if any(isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError"
           or (isinstance(e, OSError) and e.errno == errno.ENOMEM) for e in chain) or any(
            m in str(e).lower() for e in chain for m in _OOM_MARKERS):
        return f"out of memory: {message}"
    return message


def next_command(inbox: "queue.Queue[Any]", timeout: float | None, refusal: str) -> Command | None:
    """The next command a reader thread decoded into `inbox` (None when none came within `timeout`
    seconds; None waits forever). A command that did not decode raises ProtocolError: `refusal`
    says who sent what to whom."""
    try:
        item = inbox.get(timeout=timeout) if timeout != 0.0 else inbox.get_nowait()
    except queue.Empty:
        return None
    if isinstance(item, ProtocolError):
        raise ProtocolError(item.message_type, f"{refusal} ({item}); this is a bug in modx")
    return item


def pin_to_cpus(cpus: list[int]) -> None:
    """Run on `cpus` only. Done before torch loads: its OpenMP runtime then starts as many compute
    threads as the mask holds, and the ranks a distributed worker launches share them out
    (worker/launch.py)."""
    os.sched_setaffinity(0, cpus)


def worker_main(kind: str, config: dict[str, Any], events: Connection, commands: Connection,
                cpus: list[int] | None = None) -> None:
    # Released before reporting a failure, so an out-of-memory worker can still
    # format and send its report (RLIMIT_AS / a cgroup limit leaves no headroom).
    reserve = bytearray(4 << 20)
    die_with_parent()
    if cpus:
        pin_to_cpus(cpus)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C on the daemon's terminal is the daemon's business
    inbox: "queue.Queue[Command | ProtocolError]" = queue.Queue()
    send_lock = threading.Lock()

    def read_commands() -> None:
        while True:
            try:
                data = commands.recv()
            except (EOFError, OSError):
                inbox.put(Stop(reason=DAEMON_GONE, save=True))
                return
            try:
                inbox.put(decode_command(data, kind))
            except ProtocolError as exc:
                inbox.put(exc)

    def emit(report: Report) -> None:
        data = paths.shown_in(encode(report))
        with send_lock:
            events.send(data)

    def poll_command(timeout: float | None = 0.0) -> Command | None:
        """The next command from the daemon; waits up to `timeout` seconds (None = forever)."""
        return next_command(inbox, timeout, f"the daemon sent a command this {kind} worker does not understand")

    paths.confine(config.get("allowed_roots"))  # every open below is checked against them
    threading.Thread(target=read_commands, name="modx-commands", daemon=True).start()
    if cpus:
        emit(Log("info", f"worker pinned to CPU {format_cpu_list(cpus)} (worker_cpus)"))
    module_name, func_name = ENTRY_POINTS[kind].split(":")
    try:
        func = getattr(importlib.import_module(module_name), func_name)
        result = func(config, emit, poll_command)
        emit(Result(dict(result or {})))
    except BaseException as exc:  # noqa: BLE001 - everything must reach the daemon
        del reserve
        try:
            emit(Failure(describe_failure(exc), traceback.format_exc(limit=20)))
        finally:
            events.close()
            os._exit(1)
    events.close()
