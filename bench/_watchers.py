"""Shared by bench/daemon_overhead.py and bench/metric_latency.py: a tiny-Llama training set-up,
the engine run directly in a spawned process, and processes of WatchTask clients.

Each watcher is its own client: its own channel (a local subchannel pool, so its own connection
to the daemon's socket) and its own `modx-client-id`, like separate `modxctl --watch` processes.
"""
from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modxd.train_config import TrainConfig

REPO = Path(__file__).resolve().parents[1]
for _p in (str(REPO), str(REPO / "daemon"), str(REPO / "clients" / "python"), str(REPO / "gen" / "python")):
    if _p not in sys.path:
        sys.path.insert(0, _p)


def prepare(work: Path) -> tuple[Path, Path]:
    """The tiny random 2-layer Llama of the tests and 64 learnable SFT examples (made once in work)."""
    from tests.fixtures.datasets import write_sft_jsonl
    from tests.fixtures.tiny_models import make_tiny_llama

    model = work / "tiny-llama"
    if not (model / "config.json").is_file():
        make_tiny_llama(model)
    data = work / "sft.jsonl"
    if not data.is_file():
        write_sft_jsonl(data, n=64)
    return model, data


def create_task(daemon: Any, model: Path, data: Path, out: Path, overrides: dict[str, Any]) -> str:
    from tests.daemon.helpers import create_request, sft_params

    return daemon.training.CreateTask(create_request(**sft_params(model, data, out, **overrides))).task.id


def worker_config(daemon: Any, task_id: str, output_dir: Path) -> "TrainConfig":
    """What the supervisor hands its worker for this task (supervisor._launch), with another output dir."""
    from modx.v1 import training_pb2 as T

    from modxd.api.convert import value_from_proto
    from modxd.train_config import TrainConfig

    task = daemon.training.GetTask(T.GetTaskRequest(task_id=task_id)).task
    params = {key: value_from_proto(value) for key, value in task.params.items()}
    return TrainConfig.from_params("sft", **{**params, "output_dir": str(output_dir)}, device="cpu", task_id="direct")


def rate_of(points: list[tuple[int, float]]) -> dict[str, float]:
    """Training speed from logged (step, worker time) points: steps per second between the first
    and the last point, so start-up (imports, model and data loading) and the final save are out."""
    (s0, t0), (s1, t1) = points[0], points[-1]
    return {"steps_per_second": (s1 - s0) / (t1 - t0), "train_seconds": t1 - t0, "steps": s1 - s0}


def watcher_channel_options(address: str) -> list[tuple[str, Any]]:
    """The watchers' gRPC channel arguments: modxctl's for the same address."""
    from modxctl.connection import channel_options

    return channel_options(address)


# ----- A: the engine run directly, in a fresh spawned process (as a worker, without the daemon) ------

def _direct_child(config: "TrainConfig", queue: Any, cpus: set[int] | None = None,
                  env: dict[str, str] | None = None) -> None:
    if cpus:
        os.sched_setaffinity(0, cpus)
    os.environ.update(env or {})  # before torch loads: OMP_NUM_THREADS is read once, at its start
    from modxd.engine.train import run_training
    from modxd.protocol import Metrics

    points: list[tuple[int, float]] = []

    def emit(message: Any) -> None:
        if isinstance(message, Metrics) and message.loss is not None:
            points.append((message.step, float(message.time or 0.0)))

    result = run_training(config, emit, lambda *_a, **_k: None)
    queue.put({"points": points, "outcome": result.get("outcome")})


class DirectRun:
    """The engine run directly in a fresh spawned process (optionally pinned to `cpus`); `result()`
    waits for it and returns its logged (step, worker time) points."""

    def __init__(self, config: "TrainConfig", cpus: set[int] | None = None, env: dict[str, str] | None = None
                 ) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.queue = ctx.Queue()
        self.started = time.time()
        self.proc = ctx.Process(target=_direct_child, args=(config, self.queue, cpus, env), name="modx-bench-direct")
        self.proc.start()

    def result(self) -> dict[str, Any]:
        out = self.queue.get()
        self.proc.join()
        if out["outcome"] != "completed" or len(out["points"]) < 3:
            raise RuntimeError(f"the direct run did not complete: {out}")
        return {"points": out["points"], "startup_seconds": out["points"][0][1] - self.started,
                "wall_seconds": time.time() - self.started}


def run_direct(config: "TrainConfig") -> dict[str, Any]:
    out = DirectRun(config).result()
    return {**rate_of(out.pop("points")), **out}


def pin_process(pid: int, cpus: set[int]) -> None:
    """Pin every thread of a running process (a thread or child made later inherits its maker's)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(tid), cpus)
        except (ProcessLookupError, FileNotFoundError):
            pass  # a thread that ended meanwhile


# ----- watchers: their own process ------------------------------------------------------------------

def _watch_child(address: str, task_id: str, readers: int, idle: int, first: int, background: bool,
                 conn: Any, cpus: set[int] | None = None) -> None:
    if cpus:
        os.sched_setaffinity(0, cpus)
    if background:  # runs only on CPU time nobody else wants: the clients' cost is not the daemon's
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    conn.send(asyncio.run(_watch(address, task_id, readers, idle, first, conn)))
    conn.close()


async def _watch(address: str, task_id: str, readers: int, idle: int, first: int, conn: Any) -> dict[str, Any]:
    import grpc
    from modx.v1 import training_pb2 as T
    from modx.v1 import training_pb2_grpc

    options = watcher_channel_options(address) + [("grpc.use_local_subchannel_pool", 1)]  # one connection each
    channels = [grpc.aio.insecure_channel(address, options=options) for _ in range(readers + idle)]
    request = T.WatchTaskRequest(task_id=task_id)
    ready = asyncio.Event()
    opened = [0]
    samples: list[tuple[float, float, float]] = []  # (logged, stored, received) of every metrics point read
    ends: list[tuple[int, bool]] = []  # per reader: events read, ended with a terminal state change
    sizes: list[int] = []  # bytes of a few metrics messages per reader (for bench/_grpc_floor.py)

    def one_more() -> None:
        opened[0] += 1
        if opened[0] == readers + idle:
            ready.set()

    async def reader(i: int) -> None:
        stub = training_pb2_grpc.TrainingServiceStub(channels[i])
        call = stub.WatchTask(request, metadata=[("modx-client-id", f"bench-watcher-{first + i}")], timeout=1800)
        n, last = 0, None
        async for response in call:
            received = time.time()
            event = response.event
            if n == 0:
                one_more()
            n += 1
            last = event
            if event.HasField("metrics"):
                if len(sizes) < 100:
                    sizes.append(response.ByteSize())
                samples.append((event.metrics.time.ToNanoseconds() / 1e9, event.time.ToNanoseconds() / 1e9,
                                received))
        ends.append((n, last is not None and last.HasField("state_change")))

    async def never_reads(i: int) -> Any:
        stub = training_pb2_grpc.TrainingServiceStub(channels[i])
        call = stub.WatchTask(request, metadata=[("modx-client-id", f"bench-silent-{first + i}")], timeout=1800)
        await call.wait_for_connection()  # the stream is open on the server; no message is ever read
        one_more()
        return call

    if readers + idle == 0:
        ready.set()
    tasks = [asyncio.create_task(reader(i)) for i in range(readers)]
    silent = await asyncio.gather(*(never_reads(readers + i) for i in range(idle)))
    await asyncio.wait_for(ready.wait(), 120)
    conn.send("ready")
    await asyncio.gather(*tasks)
    for call in silent:
        call.cancel()
    for ch in channels:
        await ch.close()
    return {"samples": samples, "ends": ends, "sizes": sizes}


class Watchers:
    """`readers` reading watchers and `idle` never-reading ones on `task_id`, spread over spawned
    processes of at most `per_process` watchers each (real watchers are separate programs: one
    process serving them all would queue their arrivals behind each other). With `cpus`, process k
    is pinned to cpus[k % len(cpus)]."""

    def __init__(self, address: str, task_id: str, readers: int, idle: int = 0, background: bool = False,
                 per_process: int = 25, cpus: list[int] | None = None) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.readers = readers
        self.conns, self.procs = [], []
        total = readers + idle
        n = max(1, -(-total // per_process))
        for k in range(n):
            lo, hi = k * total // n, (k + 1) * total // n
            mine_readers = max(0, min(hi, readers) - lo)
            mine_idle = (hi - lo) - mine_readers
            conn, child = ctx.Pipe()
            proc = ctx.Process(target=_watch_child, name=f"modx-bench-watchers-{k}",
                               args=(address, task_id, mine_readers, mine_idle, lo, background, child,
                                     {cpus[k % len(cpus)]} if cpus else None))
            proc.start()
            child.close()
            self.conns.append(conn)
            self.procs.append(proc)

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.time() + timeout
        for conn in self.conns:
            if not conn.poll(max(0.0, deadline - time.time())) or conn.recv() != "ready":
                raise RuntimeError("the watchers did not open their streams")

    def result(self, timeout: float = 1800) -> dict[str, Any]:
        deadline = time.time() + timeout
        out: dict[str, Any] = {"samples": [], "ends": [], "sizes": []}
        for conn, proc in zip(self.conns, self.procs):
            if not conn.poll(max(0.0, deadline - time.time())):
                raise RuntimeError("the watchers did not finish")
            part = conn.recv()
            proc.join()
            out["samples"] += part["samples"]
            out["ends"] += part["ends"]
            out["sizes"] += part["sizes"]
        bad = [e for e in out["ends"] if not e[1]]
        if len(out["ends"]) != self.readers or bad:
            raise RuntimeError(f"{len(out['ends'])} of {self.readers} watchers ended, {len(bad)} without the "
                               "terminal event")
        return out


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (bytes) and CPU seconds (user + system, in hundredths) of a process."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key = line.split(":", 1)[0]
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(line.split()[1]) * 1024
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    out["cpu_ticks"] = int(fields[11]) + int(fields[12])  # utime + stime
    return out


def machine() -> str:
    import platform

    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    load = os.getloadavg()[0]
    return (f"{platform.machine()} with {os.cpu_count()} CPUs{f' ({model})' if model else ''}, shared with other "
            f"work (load average {load:.1f} at the start), Python {platform.python_version()}")


def replace_section(doc: Path, title: str, section: str) -> None:
    import re

    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    pattern = rf"^## {re.escape(title)}\n.*?(?=^## |\Z)"
    if re.search(rf"^## {re.escape(title)}\n", text, re.M):
        text = re.sub(pattern, lambda _m: section + "\n", text, flags=re.M | re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    doc.write_text(text)
