"""One rank of a distributed training run: ``python -m modxd.worker.rank RUN_JSON``.

The launcher starts one of these per device (``worker/launch.py`` on the coordinator host,
plain ``torchrun`` on the other hosts of a multi-host task). ``RUN_JSON`` holds the task's
training config, written by the coordinator. Every rank runs the ordinary
``run_training``; the differences are in ``engine/distributed.py``, plus:

* rank 0 talks to the coordinator (the worker process the daemon spawned) over a local
  socket: it sends the task's events and the result, and receives the daemon's commands;
  the other ranks send nothing (only rank 0 reports metrics and checkpoints, and only rank 0
  asks the daemon for the quota unit of a checkpoint, engine/quota.py);
* every rank that fails writes ``errors/rank-N.json`` (the sentence, the traceback, the
  time) into the run dir, so the coordinator can name the rank at fault;
* a rank dies with its parent (the launcher), like every modx worker.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from typing import Any

from .. import paths
from ..durable import write_atomic
from ..protocol import (DAEMON_GONE, Checkpoint, Command, Emit, Poll, ProtocolError, Report, Result, Stop,
                       decode_command, encode)
from .runtime import describe_failure, die_with_parent, next_command

SOCKET_ENV = "MODX_DIST_SOCKET"
AUTHKEY_ENV = "MODX_DIST_AUTHKEY"
TRAIN = "train"  # the protocol's vocabulary on the rank 0 <-> coordinator link: a training worker's


def write_error(run_dir: str, rank: int, exc: BaseException) -> None:
    errors = os.path.join(run_dir, "errors")
    os.makedirs(errors, exist_ok=True)
    record = {"rank": rank, "host": socket.gethostname(), "pid": os.getpid(), "time": time.time(),
              "error": describe_failure(exc), "traceback": traceback.format_exc(limit=20)}
    write_atomic(os.path.join(errors, f"rank-{rank}.json"), json.dumps(record))


class CoordinatorChannel:
    """Rank 0's connection to the coordinator: reports out, commands in (modxd/protocol.py, as on a
    worker's pipe; a command that does not decode fails the run at the next poll)."""

    def __init__(self, address: str, authkey: bytes):
        from multiprocessing.connection import Client

        self.conn = Client(address, family="AF_UNIX", authkey=authkey)
        self.inbox: "queue.Queue[Command | ProtocolError]" = queue.Queue()
        self.lock = threading.Lock()
        threading.Thread(target=self._read, name="modx-rank-commands", daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                data = self.conn.recv()
            except (EOFError, OSError):
                self.inbox.put(Stop(reason=DAEMON_GONE, save=True))
                return
            try:
                self.inbox.put(decode_command(data, TRAIN))
            except ProtocolError as exc:
                self.inbox.put(exc)

    def emit(self, report: Report) -> None:
        data = paths.shown_in(encode(report))
        with self.lock:
            self.conn.send(data)

    def poll(self, timeout: float | None = 0.0) -> Command | None:
        """The next command; waits up to `timeout` seconds (None = forever)."""
        return next_command(self.inbox, timeout, "the coordinator sent a command rank 0 does not understand")

    def close(self) -> None:
        try:
            self.conn.close()
        except OSError:
            pass


def rank_config(spec: dict[str, Any], rank: int, local_rank: int) -> dict[str, Any]:
    """The ``run_training`` config of one rank."""
    cfg = dict(spec["config"])
    cfg["device"] = "cpu" if spec["device_type"] == "cpu" else f"cuda:{local_rank}"
    cfg["save_interval_minutes"] = 0  # rank 0's CommandSync decides time-based saves for all
    if rank != 0 and "merge_lora_after_training" in cfg:  # an SFT parameter (the config is checked by the schema)
        cfg["merge_lora_after_training"] = False  # one writer
    return cfg


def run_engine(config: Mapping[str, Any], emit: Emit, poll_command: Poll, quota: Any = None) -> dict:
    """The engine's run of the config's task type: ``run_preference`` (dpo, orpo) or ``run_training``.

    The config is read back through the schema once, here (``TrainConfig.from_wire``), and the
    engine gets that typed config: no second coercion."""
    from ..preference_params import PREFERENCE_TYPES
    from ..train_config import TrainConfig

    run = TrainConfig.from_wire(config)
    if run.task_type in PREFERENCE_TYPES:
        from ..engine.preference import run_preference

        return run_preference(run, emit, poll_command, quota=quota)
    from ..engine.train import run_training

    return run_training(run, emit, poll_command, quota=quota)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m modxd.worker.rank RUN_JSON", file=sys.stderr)
        return 2
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C on a terminal is the daemon's (or launcher's) business
    with open(argv[0]) as f:
        spec = json.load(f)
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    run_dir = spec["run_dir"]
    paths.confine(spec["config"].get("allowed_roots"))  # the daemon's roots, as in every worker
    channel: CoordinatorChannel | None = None
    try:
        if rank == 0:  # before the heavy imports: the coordinator knows the ranks are up
            channel = CoordinatorChannel(os.environ[SOCKET_ENV], bytes.fromhex(os.environ[AUTHKEY_ENV]))
        from ..engine.distributed import CommandSync, shutdown
        from ..engine.quota import QuotaGate

        cfg = rank_config(spec, rank, local_rank)
        # Rank 0 waits for the daemon's quota answers on its own link, under the command broadcast.
        gate = QuotaGate(channel.emit if channel else (lambda event: None),
                         channel.poll if channel else (lambda timeout=0.0: None),
                         enabled=channel is not None and bool(spec["config"].get("reserve_quota")))
        sync = CommandSync(gate.poll, float(spec["config"].get("save_interval_minutes") or 0) * 60)

        def emit(report: Report) -> None:
            if channel is None:
                return
            if isinstance(report, Checkpoint):
                sync.saved()
            channel.emit(report)

        result = run_engine(cfg, emit, sync, quota=gate)
        shutdown()  # before the interpreter exits: see distributed.shutdown
        if channel is not None:
            channel.emit(Result(dict(result or {})))
    except BaseException as exc:  # noqa: BLE001 - every failure must be named
        try:
            write_error(run_dir, rank, exc)
        finally:
            sys.stderr.write(traceback.format_exc(limit=20))
            sys.stderr.flush()
            os._exit(1)  # no process-group teardown: a peer may be gone
    if channel is not None:
        channel.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
