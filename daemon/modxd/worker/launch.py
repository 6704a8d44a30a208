"""The training worker's entry: one process, or one process per device through the launcher.

The daemon spawns one worker per task (``worker/runtime.py``), which calls :func:`run_train_task`.
With one device it simply runs the engine's run of the task type (``run_training``, or
``run_preference`` for dpo and orpo: ``rank.run_engine``). With several (``process_devices`` in the
config, from the task's ``devices`` parameter) or several hosts (``nnodes``), the worker
becomes the *coordinator*: it starts one rank per local device with torch's elastic launcher
(the engine behind ``torchrun``, static rendezvous, no restarts) running
``python -m modxd.worker.rank RUN_JSON``, and relays:

* rank 0's reports (metrics, logs, checkpoints, the result) to the daemon, decoded and checked
  like every worker's (modxd/protocol.py);
* the daemon's commands (stop, save, quota replies) to rank 0, which broadcasts them to every rank.

A rank that fails or is killed makes the launcher stop the whole group; the coordinator then
raises an :class:`EngineError` that names the rank at fault, so the task fails with that
reason. Other hosts of a multi-host task run plain ``torchrun`` with the same rank module
(see docs/distributed.md); ``python -m modxd.worker.launch join`` prints or runs that command.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from typing import Any, Callable

from .. import files
from ..engine.checkpoints import remove_entry
from ..durable import write_atomic
from ..hardware import usable_cpu_count
from ..paths import pin_output_dir
from ..protocol import Command, Emit, Log, Poll, ProtocolError, Result, Stop, decode_report, encode
from .rank import AUTHKEY_ENV, SOCKET_ENV, TRAIN, run_engine

__all__ = ["run_train_task", "run_distributed", "RUN_DIR_NAME", "run_file", "torchrun_command"]

log = logging.getLogger("modxd.engine")

RUN_DIR_NAME = ".modx-distributed"  # in output_dir, for a task that spans hosts (shared storage)
RUN_FILE = "run.json"
_SECONDARY = ("connection closed by peer", "connection reset by peer", "broken pipe", "timed out",
              "nccl communicator was aborted", "processgroup", "socket closed", "gloo")


def process_devices(config: dict[str, Any]) -> list[str]:
    devices = config.get("process_devices") or [config.get("device") or "cpu"]
    return [str(d) for d in devices]


def world_size_of(config: dict[str, Any]) -> int:
    return len(process_devices(config)) * max(int(config.get("nnodes") or 1), 1)


def run_train_task(config: dict, emit: Emit, poll_command: Poll) -> dict:
    """Entry point of the ``train`` worker kind."""
    if world_size_of(config) <= 1:
        cfg = {k: v for k, v in config.items() if k != "process_devices"}
        cfg["device"] = process_devices(config)[0]
        return run_engine(cfg, emit, poll_command)
    return run_distributed(config, emit, poll_command)


def run_file(output_dir: str) -> str:
    """Where the coordinator of a multi-host task writes the run description."""
    return os.path.join(output_dir, RUN_DIR_NAME, RUN_FILE)


def torchrun_command(spec: dict[str, Any], node_rank: int, python: str = "python") -> list[str]:
    """The ``torchrun`` command another host runs to join the task described by ``spec``."""
    host, port = spec["rdzv_endpoint"].rsplit(":", 1)
    return [python, "-m", "torch.distributed.run", f"--nnodes={spec['nnodes']}",
            f"--nproc-per-node={spec['nproc_per_node']}", f"--node-rank={node_rank}",
            f"--master-addr={host}", f"--master-port={port}", f"--rdzv-id={spec['run_id']}",
            "-m", "modxd.worker.rank",
            os.path.join(spec["run_dir"], RUN_FILE)]


def _shared_run_dir(output_dir: str, emit: Emit) -> str:
    """A fresh ``<output_dir>/.modx-distributed``, made through the open output dir (never through a
    symlink) and reported to the manifest as the task's scratch dir before anything is written."""
    with pin_output_dir("parameter output_dir", output_dir)[0] as out:
        remove_entry(out, RUN_DIR_NAME)
        emit(files.message([files.entry(out.real_join(RUN_DIR_NAME), "scratch")]))
        with out.subdir(RUN_DIR_NAME, fresh=True)[0] as run:
            return run.real


def _remove_shared_run_dir(output_dir: str, emit: Emit) -> None:
    with pin_output_dir("parameter output_dir", output_dir, create=False)[0] as out:
        remove_entry(out, RUN_DIR_NAME)
        emit(files.message(removed=[out.real_join(RUN_DIR_NAME)]))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Relay:
    """Rank 0 <-> coordinator: reports to ``emit``, commands from ``poll_command``.

    A report of rank 0 that does not decode is a bug in modx: the first one is kept (``broken``),
    rank 0 is told to stop without saving, and the run fails with its sentence."""

    def __init__(self, address: str, authkey: bytes, emit: Emit, poll_command: Poll,
                 unreachable: Callable[[Stop], None] = lambda command: None, grace_s: float = 3.0):
        from multiprocessing.connection import Listener

        self.address, self.authkey = address, authkey
        self.listener = Listener(address, family="AF_UNIX", authkey=authkey)
        self.emit, self.poll_command = emit, poll_command
        self.result: dict[str, Any] | None = None
        self.broken: ProtocolError | None = None
        self.conn: Any = None
        self.connected = threading.Event()
        self.done = threading.Event()
        self.pending: list[Command] = []
        self.unreachable, self.grace_s = unreachable, grace_s  # a stop that rank 0 is not there to take
        self.stop_since: float | None = None
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, name="modx-relay-events", daemon=True)
        self.writer = threading.Thread(target=self._forward, name="modx-relay-commands", daemon=True)
        self.reader.start()
        self.writer.start()

    def _read(self) -> None:
        while True:
            try:
                conn = self.listener.accept()
                break
            except OSError:
                return  # closed
            except Exception:  # noqa: BLE001 - a connection that failed the handshake: not rank 0
                if self.done.is_set():
                    return
        if self.done.is_set():  # the wake-up connection of close()
            conn.close()
            return
        with self.lock:
            self.conn = conn
            for command in self.pending:
                self._send(command)
            self.pending.clear()
        self.connected.set()
        while True:
            try:
                data = conn.recv()
            except (EOFError, OSError):
                return
            try:
                message = decode_report(data, TRAIN)
            except ProtocolError as exc:
                if self.broken is None:
                    self.broken = exc
                    with self.lock:
                        self._send(Stop(reason="protocol_error", save=False))
                continue
            if isinstance(message, Result):
                self.result = message.values
            else:
                self.emit(message)

    def _send(self, command: Command) -> None:
        try:
            self.conn.send(encode(command))
        except (OSError, ValueError):
            pass

    def _forward(self) -> None:
        while not self.done.is_set():
            command = self.poll_command(0.2)
            with self.lock:
                if command is not None:
                    if self.conn is None:
                        self.pending.append(command)
                        if isinstance(command, Stop) and self.stop_since is None:
                            self.stop_since = time.monotonic()
                    else:
                        self._send(command)
                waiting = self.conn is None and self.stop_since is not None
            if waiting and time.monotonic() - self.stop_since > self.grace_s:
                # Rank 0 connects as soon as its process starts: without it the launcher is still
                # waiting for the other hosts (rendezvous) or starting the ranks; nothing was
                # trained or saved yet.
                self.unreachable(next(c for c in self.pending if isinstance(c, Stop)))
                self.stop_since = float("inf")

    def finish(self, timeout: float = 30.0) -> None:
        """After the launcher returned: drain rank 0's last events, then close everything."""
        self.reader.join(timeout if self.connected.is_set() else 0)
        self.done.set()
        if not self.connected.is_set():
            try:  # wake a reader still waiting in accept()
                from multiprocessing.connection import Client

                Client(self.address, family="AF_UNIX", authkey=self.authkey).close()
            except Exception:
                pass
            self.reader.join(5)
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
        self.listener.close()
        self.writer.join(5)


def _read_errors(run_dir: str) -> list[dict[str, Any]]:
    errors = os.path.join(run_dir, "errors")
    out = []
    if os.path.isdir(errors):
        for name in sorted(os.listdir(errors)):
            if name.startswith("rank-") and name.endswith(".json"):
                try:
                    with open(os.path.join(errors, name)) as f:
                        out.append(json.load(f))
                except (OSError, ValueError):
                    continue
    return out


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def describe_group_failure(run_dir: str, failures: dict[int, Any], world: int) -> tuple[str, list[str]]:
    """(the reason, log lines for every failed rank) after the launcher stopped a failed group.

    The root cause is, in this order: a rank's own error that is not a lost peer, a rank killed
    by a signal other than the launcher's SIGTERM, a rank killed by SIGTERM, a lost-peer error.
    """
    errors = {int(e["rank"]): e for e in _read_errors(run_dir)}
    lines: list[str] = []
    own, signalled, terminated, secondary = [], [], [], []
    for e in sorted(errors.values(), key=lambda e: e.get("time", 0)):
        lines.append(f"rank {e['rank']} ({e.get('host', '?')}, pid {e.get('pid', '?')}): {e['error']}")
        lines.extend("  " + line for line in e.get("traceback", "").splitlines()[-6:])
        if any(m in e["error"].lower() for m in _SECONDARY):
            secondary.append(f"rank {e['rank']} of {world}: {e['error']}")
        else:
            own.append(f"rank {e['rank']} of {world}: {e['error']}")
    for global_rank, failure in sorted(failures.items(), key=lambda kv: getattr(kv[1], "timestamp", 0)):
        if global_rank in errors:
            continue
        exitcode = getattr(failure, "exitcode", None)
        sig = getattr(failure, "signal", None) or (-exitcode if isinstance(exitcode, int) and exitcode < 0 else 0)
        pid = getattr(failure, "pid", "?")
        if sig:
            name = _signal_name(sig)
            text = f"rank {global_rank} of {world} (pid {pid}) was killed by signal {name}"
            if name == "SIGKILL":
                text += " (out of memory, or killed by an operator)"
            (terminated if name == "SIGTERM" else signalled).append(text)
        else:
            text = f"rank {global_rank} of {world} (pid {pid}) exited with code {exitcode}"
            own.append(text)
        lines.append(text)
    cause = (own or signalled or terminated or secondary or [f"a rank of {world} failed"])[0]
    return f"distributed training failed: {cause}; the launcher stopped the other ranks", lines


def _launch_config(spec: dict[str, Any], node_rank: int, logs_dir: str) -> Any:
    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs
    from torch.distributed.launcher.api import LaunchConfig

    return LaunchConfig(
        min_nodes=spec["nnodes"], max_nodes=spec["nnodes"], nproc_per_node=spec["nproc_per_node"],
        run_id=spec["run_id"], rdzv_backend="static", rdzv_endpoint=spec["rdzv_endpoint"],
        rdzv_configs={"rank": node_rank, "timeout": int(spec.get("rdzv_timeout", 900))},
        max_restarts=0, monitor_interval=0.1, start_method="spawn",
        logs_specs=DefaultLogsSpecs(log_dir=logs_dir),
        # SIGINT stays ignored (the daemon's terminal); SIGTERM stops the ranks cleanly.
        signals_to_handle="SIGTERM,SIGHUP,SIGQUIT", shutdown_timeout=10)


def _rank_environment(config: dict[str, Any], devices: list[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    if devices[0].startswith("cuda"):
        ids = [d.split(":", 1)[1] if ":" in d else "0" for d in devices]
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible:  # the daemon's own view is already remapped: keep the physical ids
            physical = [v.strip() for v in visible.split(",") if v.strip()]
            ids = [physical[int(i)] if int(i) < len(physical) else i for i in ids]
        env["CUDA_VISIBLE_DEVICES"] = ",".join(ids)  # rank with LOCAL_RANK n uses cuda:n
    elif "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = str(max(usable_cpu_count() // len(devices), 1))
    return env


def run_distributed(config: dict, emit: Emit, poll_command: Poll) -> dict:
    """Coordinate one distributed run from node 0; returns rank 0's result."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import elastic_launch

    from ..engine.models import EngineError

    devices = process_devices(config)
    nnodes = max(int(config.get("nnodes") or 1), 1)
    world = len(devices) * nnodes
    output_dir = str(config["output_dir"])
    local_dir = tempfile.mkdtemp(prefix="modx-dist-")  # the socket and logs: this host only
    if nnodes > 1:
        endpoint = str(config.get("rdzv_endpoint") or "")
        if ":" not in endpoint:
            raise EngineError(f"rdzv_endpoint must be host:port for a task on {nnodes} hosts (got {endpoint!r})")
        run_dir = _shared_run_dir(output_dir, emit)  # every host reads it: shared storage
    else:
        endpoint = f"127.0.0.1:{_free_port()}"
        run_dir = local_dir
    os.makedirs(run_dir, exist_ok=True)
    spec = {
        "run_id": str(config.get("task_id") or "modx"),  # torchrun's --rdzv-id on the other hosts
        "config": {k: v for k, v in config.items() if k not in ("process_devices", "device")},
        "device_type": "cpu" if devices[0] == "cpu" else "cuda",
        "nproc_per_node": len(devices), "nnodes": nnodes, "rdzv_endpoint": endpoint, "run_dir": run_dir,
        "strategy": config.get("distributed_strategy") or "ddp",
    }
    path = os.path.join(run_dir, RUN_FILE)
    write_atomic(path, json.dumps(spec))

    authkey = secrets.token_bytes(16)
    address = os.path.join(local_dir, "rank0.sock")

    def stop_while_waiting(command: Stop) -> None:
        if not multiprocessing.current_process().name.startswith("modx-train-"):
            return  # called in-process (tests, benchmarks): keep waiting
        emit(Log("info", "stopped before the ranks started (nothing trained)"))
        emit(Result({"outcome": "stopped", "reason": command.reason or "user", "final_step": 0,
                     "final_loss": None, "merged_dir": None}))
        os._exit(0)  # the launcher is blocked in the rendezvous; ranks (if any) die with this process

    relay = _Relay(address, authkey, emit, poll_command, stop_while_waiting)
    saved_env = {k: os.environ.get(k) for k in (SOCKET_ENV, AUTHKEY_ENV, "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS")}
    os.environ.update({SOCKET_ENV: address, AUTHKEY_ENV: authkey.hex(), **_rank_environment(config, devices)})
    where = f"{nnodes} hosts x {len(devices)}" if nnodes > 1 else f"{len(devices)}"
    emit(Log("info", f"distributed training: {where} processes ({world} ranks, {spec['strategy']}) on "
                     f"{', '.join(devices)}; rendezvous at {endpoint}"))
    if nnodes > 1:
        emit(Log("info", "waiting for the other hosts; on host N (1.." + str(nnodes - 1) + ") run: "
                 + " ".join(torchrun_command(spec, 1, sys.executable)).replace("--node-rank=1", "--node-rank=N")))
    failure: tuple[str, list[str]] | None = None
    started = time.monotonic()
    try:
        elastic_launch(_launch_config(spec, 0, os.path.join(local_dir, "logs")), sys.executable)(
            "-m", "modxd.worker.rank", path)
    except ChildFailedError as exc:
        failure = describe_group_failure(run_dir, exc.failures, world)
    except Exception as exc:  # the launcher itself: rendezvous timeout, a signal, a busy port...
        failure = (f"the distributed launcher failed ({type(exc).__name__}: {exc or 'no detail'})",
                   [f"launcher: {type(exc).__name__}: {exc}"])
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        relay.finish()
        if nnodes > 1:  # a later join must not find this run; the ranks' error files stay
            if failure is None:
                _remove_shared_run_dir(output_dir, emit)
            else:
                try:
                    os.remove(path)
                except OSError:
                    pass
    try:
        if relay.broken is not None:
            raise EngineError(f"rank 0 sent a report the coordinator does not understand ({relay.broken}); "
                              "this is a bug in modx")
        if failure is not None:
            reason, lines = failure
            for line in lines:
                emit(Log("error", line))
            raise EngineError(reason)
        if relay.result is None:
            raise EngineError("distributed training ended without a result from rank 0")
        log.info("distributed run of %d ranks ended after %.1fs", world, time.monotonic() - started)
        return relay.result
    finally:
        shutil.rmtree(local_dir, ignore_errors=True)


def _join(args: argparse.Namespace) -> int:
    """Another host's side of a multi-host task: wait for the run file, then run torchrun."""
    path = run_file(args.output_dir)
    deadline = time.monotonic() + args.wait
    while not os.path.isfile(path):
        if time.monotonic() > deadline:
            print(f"no run description at {path} after {args.wait:g}s: start the task on the coordinator",
                  file=sys.stderr)
            return 1
        time.sleep(1)
    with open(path) as f:
        spec = json.load(f)
    command = torchrun_command(spec, args.node_rank, sys.executable)
    if args.print:
        print(" ".join(command))
        return 0
    os.execv(sys.executable, command)
    return 0  # not reached


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modxd.worker.launch")
    sub = parser.add_subparsers(dest="command", required=True)
    join = sub.add_parser("join", help="join a multi-host task from another host (runs torchrun)")
    join.add_argument("--output-dir", required=True, help="the task's output_dir (shared storage)")
    join.add_argument("--node-rank", type=int, required=True, help="this host's rank, 1..nnodes-1")
    join.add_argument("--wait", type=float, default=600.0, help="seconds to wait for the task to start")
    join.add_argument("--print", action="store_true", help="print the torchrun command instead of running it")
    args = parser.parse_args(argv)
    return _join(args)


if __name__ == "__main__":
    sys.exit(main())
