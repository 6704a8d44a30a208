"""The worker process: runs one job of the engine and reports over a pipe.

Started with the `spawn` method (CUDA cannot live in a forked child). It dies
with the daemon (PR_SET_PDEATHSIG) so a killed daemon never leaves an orphan
holding a GPU, and it treats a closed command pipe as a stop request.
"""
from __future__ import annotations

import ctypes
import importlib
import os
import queue
import signal
import sys
import threading
import traceback
from multiprocessing.connection import Connection
from typing import Any

# kind -> "module:function"; each takes (config, emit, poll_command) and returns a result dict.
ENTRY_POINTS = {
    "train": "modxd.engine.train:run_training",
    "eval": "modxd.engine.evaluate:run_evaluation",
    "package": "modxd.engine.export:run_package",
}


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass


def worker_main(kind: str, config: dict[str, Any], events: Connection, commands: Connection) -> None:
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C on the daemon's terminal is the daemon's business
    inbox: "queue.Queue[dict[str, Any]]" = queue.Queue()
    send_lock = threading.Lock()

    def read_commands() -> None:
        while True:
            try:
                inbox.put(commands.recv())
            except (EOFError, OSError):
                inbox.put({"cmd": "stop", "reason": "daemon_gone", "save": True})
                return

    def emit(event: dict[str, Any]) -> None:
        with send_lock:
            events.send(event)

    def poll_command(timeout: float | None = 0.0) -> dict[str, Any] | None:
        """The next command from the daemon; waits up to `timeout` seconds (None = forever)."""
        try:
            return inbox.get(timeout=timeout) if timeout != 0.0 else inbox.get_nowait()
        except queue.Empty:
            return None

    threading.Thread(target=read_commands, name="modx-commands", daemon=True).start()
    module_name, func_name = ENTRY_POINTS[kind].split(":")
    try:
        func = getattr(importlib.import_module(module_name), func_name)
        result = func(config, emit, poll_command)
        emit({"type": "result", **(result or {})})
    except BaseException as exc:  # noqa: BLE001 - everything must reach the daemon
        message = str(exc) or type(exc).__name__
        if isinstance(exc, MemoryError) or "out of memory" in message.lower():
            message = f"out of memory: {message}"
        try:
            emit({"type": "error", "error": f"{type(exc).__name__}: {message}",
                  "traceback": traceback.format_exc(limit=20)})
        finally:
            events.close()
            os._exit(1)
    events.close()
