"""Start a worker process (spawn) and pump its reports into the event loop.

The daemon's end of the pipes: commands go out encoded (modxd/protocol.py); every report that
comes back is decoded and checked against what this kind of worker may send before it reaches
the event loop. One that does not decode arrives as the ProtocolError instead, so whoever follows
the worker (jobs/supervisor.py, jobs/runner.py, jobs/inference.py) logs it and fails the run.
"""
from __future__ import annotations

import asyncio
import multiprocessing as mp
import threading
from dataclasses import dataclass
from typing import Any

from ..hardware import usable_cpu_count
from ..protocol import Command, ProtocolError, Report, decode_report, encode
from .runtime import worker_main

_CTX = mp.get_context("spawn")
# CPUs every worker is pinned to (the daemon's `worker_cpus`); empty: the daemon's own CPUs. Set once
# at start-up, before any worker exists.
_worker_cpus: list[int] = []
# The allowed roots every worker confines its opens to (modxd/paths.py), passed in its config as
# `allowed_roots`; set once at start-up. Empty: workers run unconfined (in-process tests).
_worker_roots: list[str] = []


def set_worker_cpus(cpus: list[int]) -> None:
    _worker_cpus[:] = cpus


def set_worker_roots(roots: list) -> None:
    _worker_roots[:] = [str(r) for r in roots]


def worker_cpus() -> list[int]:
    """The CPUs workers (and a calibration run, which times a worker's steps) are pinned to; empty: none."""
    return list(_worker_cpus)


def worker_cpu_count() -> int:
    """How many CPUs a worker gets: `worker_cpus`, else all this process may use."""
    return len(_worker_cpus) or usable_cpu_count()


@dataclass
class WorkerHandle:
    process: mp.process.BaseProcess
    commands: Any  # Connection: daemon -> worker
    reports: asyncio.Queue  # worker -> daemon: Report, or the ProtocolError of one that did not decode; None ends

    def send(self, command: Command) -> None:
        data = encode(command)
        try:
            self.commands.send(data)
        except (OSError, ValueError):
            pass  # the worker is gone; its exit is handled by whoever follows `reports`

    async def join(self) -> int | None:
        await asyncio.to_thread(self.process.join)
        return self.process.exitcode


def spawn_worker(kind: str, config: dict[str, Any], name: str) -> WorkerHandle:
    events_r, events_w = _CTX.Pipe(duplex=False)
    commands_r, commands_w = _CTX.Pipe(duplex=False)
    if _worker_roots:
        config = {**config, "allowed_roots": list(_worker_roots)}
    process = _CTX.Process(target=worker_main, args=(kind, config, events_w, commands_r, list(_worker_cpus)),
                           name=name, daemon=False)
    process.start()
    events_w.close()
    commands_r.close()
    reports: asyncio.Queue = asyncio.Queue()
    loop = asyncio.get_running_loop()
    threading.Thread(target=_pump, args=(events_r, kind, reports, loop), daemon=True, name=f"pipe-{name}").start()
    return WorkerHandle(process, commands_w, reports)


def _pump(conn: Any, kind: str, out: asyncio.Queue, loop: asyncio.AbstractEventLoop) -> None:
    """Thread: move worker messages, decoded, into the event loop; None marks the end of the pipe."""
    try:
        while True:
            try:
                data = conn.recv()
            except (EOFError, OSError):
                break
            try:
                message: Report | ProtocolError = decode_report(data, kind)
            except ProtocolError as exc:
                message = exc
            loop.call_soon_threadsafe(out.put_nowait, message)
    finally:
        conn.close()
        try:
            loop.call_soon_threadsafe(out.put_nowait, None)
        except RuntimeError:
            pass


def exit_reason(exitcode: int | None) -> str:
    import signal

    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = str(-exitcode)
        reason = f"worker killed by signal {name}"
        if name == "SIGKILL":
            reason += " (out of memory, or killed by an operator)"
        return reason
    return f"worker exited with code {exitcode} without a result"
