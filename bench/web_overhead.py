"""Benchmark: does the browser listener cost training anything? Two daemons side by side.

    .venv/bin/python bench/web_overhead.py [--work DIR] [--pairs N] [--watchers 0,50] [--logging-steps 10,1]
                                           [--epochs N] [--no-write]

G: a `modxd` without the web listener, its task watched by N gRPC WatchTask clients (as in
bench/daemon_overhead.py). W: a `modxd` with `web_listen` on loopback, its task watched by N
browser-like clients: Connect server streams in the binary format over HTTP/1.1, one connection
each (what @connectrpc/connect-web sends with useBinaryFormat). With N = 0 the listener is on but
idle: what merely turning it on costs.

Both train the same tiny-Llama SFT run at the same time with one torch thread each, each daemon
(with the worker it spawns and all their threads) on a core of its own, and the two trade cores
every second (bench/daemon_overhead.py's side-by-side design): a slow spell of the shared host
hits both alike. Each family of watchers runs in two processes, one pinned to each core, so the
clients' CPU is taken from G and W alike. The ratio W/G is W's training speed over G's on the
window both were training (steps between logged points, on the workers' clocks); 1.0 is "no
cost". Both daemons are polled alike while they train: polling only one (every 0.5 s) made
its worker train about 20 % faster than an identical daemon's on this host, so any asymmetry in
how the two are handled shows up; the control pairs (G against C, a third daemon set up like G)
measure what is left of it.

Written to the "Browser listener overhead" section of docs/benchmarks.md unless --no-write.
"""
from __future__ import annotations

import argparse
import http.client
import os
import shutil
import statistics
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _watchers as W  # noqa: E402
from daemon_overhead import DEFAULT_LOGGING_STEPS, CpuSampler, rate_within, training_overrides  # noqa: E402

REPO = W.REPO
DOC = REPO / "docs" / "benchmarks.md"
COMMAND = ".venv/bin/python bench/web_overhead.py"
WATCH = "/modx.v1.TrainingService/WatchTask"


# ----- browser-like watchers: Connect server streams over HTTP/1.1 -----------------------------------

def _web_reader(port: int, task_id: str, ready: threading.Barrier, out: list[tuple[int, bool]]) -> None:
    from modx.v1 import training_pb2 as T

    payload = T.WatchTaskRequest(task_id=task_id).SerializeToString()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1800)
    conn.request("POST", WATCH, body=struct.pack(">BI", 0, len(payload)) + payload,
                 headers={"Content-Type": "application/connect+proto", "Connect-Protocol-Version": "1"})
    resp = conn.getresponse()
    n, terminal, waiting = 0, False, True
    while True:
        head = resp.read(5)
        if len(head) < 5:
            break
        flags, length = struct.unpack(">BI", head)
        body = resp.read(length)
        if flags & 0x02:  # end of stream
            break
        event = T.WatchTaskResponse.FromString(body).event  # decoded, as a browser decodes it
        n += 1
        terminal = event.HasField("state_change") and event.state_change.to_state in (5, 6, 7)
        if waiting:
            waiting = False
            ready.wait()
    conn.close()
    out.append((n, terminal))


def _web_child(port: int, task_id: str, readers: int, conn: Any, cpu: int) -> None:
    os.sched_setaffinity(0, {cpu})
    ready = threading.Barrier(readers + 1)
    out: list[tuple[int, bool]] = []
    threads = [threading.Thread(target=_web_reader, args=(port, task_id, ready, out), daemon=True)
               for _ in range(readers)]
    for t in threads:
        t.start()
    ready.wait(timeout=180)
    conn.send("ready")
    for t in threads:
        t.join()
    conn.send(out)


class WebWatchers:
    """`n` browser-like watchers of `task_id`, in one process per CPU of `cpus`."""

    def __init__(self, port: int, task_id: str, n: int, cpus: list[int]) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.n, self.conns, self.procs = n, [], []
        for k, cpu in enumerate(cpus):
            mine = n * (k + 1) // len(cpus) - n * k // len(cpus)
            if not mine:
                continue
            conn, child = ctx.Pipe()
            proc = ctx.Process(target=_web_child, args=(port, task_id, mine, child, cpu), name=f"modx-bench-web-{k}")
            proc.start()
            child.close()
            self.conns.append(conn)
            self.procs.append(proc)

    def wait_ready(self, timeout: float = 180) -> None:
        for conn in self.conns:
            if not conn.poll(timeout) or conn.recv() != "ready":
                raise RuntimeError("the web watchers did not open their streams")

    def result(self, timeout: float = 1800) -> list[tuple[int, bool]]:
        ends: list[tuple[int, bool]] = []
        for conn, proc in zip(self.conns, self.procs):
            if not conn.poll(timeout):
                raise RuntimeError("the web watchers did not finish")
            ends += conn.recv()
            proc.join()
        if len(ends) != self.n or not all(terminal for _, terminal in ends):
            raise RuntimeError(f"{len(ends)} of {self.n} web watchers ended, not all at the terminal event")
        return ends


# ----- the side-by-side pair ---------------------------------------------------------------------------

class DaemonSwapper:
    """Daemon G (and its children) on one core, W on the other; they trade cores every `seconds`."""

    def __init__(self, pids: tuple[int, int], cpus: list[int], seconds: float) -> None:
        self.pids, self.cpus, self.seconds, self.swaps = pids, cpus, seconds, 0
        self._done = threading.Event()
        self._place()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _place(self) -> None:
        import psutil

        for k, pid in enumerate(self.pids):
            cpu = self.cpus[(k + self.swaps) % 2]
            for proc in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
                try:
                    W.pin_process(proc.pid, {cpu})
                except (FileNotFoundError, psutil.NoSuchProcess):
                    pass

    def _run(self) -> None:
        while not self._done.wait(self.seconds):
            self.swaps += 1
            self._place()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def run_pair(g: Any, w: Any, port: int | None, model: Path, data: Path, work: Path, tag: str,
             overrides: dict[str, Any], watchers: int, cpus: list[int], swap_seconds: float, first: int = 0
             ) -> dict[str, Any]:
    """One pair; `first` says which daemon's task is started first (0: G), alternated over pairs.
    `port` None: the other daemon is watched over gRPC (the control)."""
    from modx.v1 import training_pb2 as T

    from tests.daemon.helpers import loss_points, state_name

    g_task = W.create_task(g, model, data, work / f"g-{tag}", overrides)
    w_task = W.create_task(w, model, data, work / f"w-{tag}", overrides)
    g_watch = W.Watchers(g.address, g_task, watchers, per_process=max(1, -(-watchers // 2)), cpus=cpus)
    w_watch = (WebWatchers(port, w_task, watchers, cpus) if port is not None else
               W.Watchers(w.address, w_task, watchers, per_process=max(1, -(-watchers // 2)), cpus=cpus))
    g_watch.wait_ready()
    w_watch.wait_ready()
    samplers = CpuSampler(g.proc.pid), CpuSampler(w.proc.pid)
    swapper = DaemonSwapper((g.proc.pid, w.proc.pid), cpus, swap_seconds)
    try:
        starts = [(g, g_task), (w, w_task)]
        for daemon, task_id in starts[first:] + starts[:first]:
            daemon.training.StartTask(T.StartTaskRequest(task_id=task_id))
        g_watch.result()
        ends = w_watch.result()
        ends = ends if port is not None else ends["ends"]
        pending = [(g, g_task), (w, w_task)]
        while pending:  # both polled alike: a poll is a little work for a daemon
            time.sleep(0.5)
            for daemon, task_id in list(pending):
                task = daemon.training.GetTask(T.GetTaskRequest(task_id=task_id)).task
                if state_name(task.state) in ("completed", "failed", "stopped"):
                    pending.remove((daemon, task_id))
                    if state_name(task.state) != "completed":
                        raise RuntimeError(f"task {task_id} ended {state_name(task.state)}: {task.state_reason}")
    finally:
        swapper.stop()
        for s in samplers:
            s.stop()
    gp = [(step, t) for step, _loss, t in loss_points(g, g_task)]
    wp = [(step, t) for step, _loss, t in loss_points(w, w_task)]
    lo, hi = max(gp[0][1], wp[0][1]), min(gp[-1][1], wp[-1][1])
    g_rate, w_rate = rate_within(gp, lo, hi), rate_within(wp, lo, hi)
    return {"g": g_rate, "w": w_rate, "ratio": w_rate / g_rate, "window_seconds": hi - lo, "swaps": swapper.swaps,
            "g_cpu": (samplers[0].at(hi) - samplers[0].at(lo)) / (hi - lo),
            "w_cpu": (samplers[1].at(hi) - samplers[1].at(lo)) / (hi - lo),
            "events_per_watcher": statistics.median([n for n, _ in ends] or [0])}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=None, help="working dir (default: a temp dir, removed)")
    parser.add_argument("--pairs", type=int, default=3, help="side-by-side pairs per case (default 3)")
    parser.add_argument("--watchers", default="0,50", help="comma-separated watcher counts (default 0,50)")
    parser.add_argument("--logging-steps", default=f"{DEFAULT_LOGGING_STEPS},1",
                        help="comma-separated logging_steps with watchers (default: the schema's default, and 1)")
    parser.add_argument("--epochs", type=int, default=100, help="of 16 steps each (default 100)")
    parser.add_argument("--swap-seconds", type=float, default=1.0)
    parser.add_argument("--control-pairs", type=int, default=2,
                        help="pairs of G against C, a daemon like G (no listener): the design's own spread (A/A)")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args(argv)
    args.command = " ".join([COMMAND, *(sys.argv[1:] if argv is None else argv)])
    if len(os.sched_getaffinity(0)) < 2:
        parser.error("the side-by-side design needs two CPUs")
    counts = [int(x) for x in args.watchers.split(",") if x.strip()]
    every = [int(x) for x in args.logging_steps.split(",") if x.strip()]
    cases = [(n, e) for n in counts for e in (every if n else every[:1])]

    from tests.service.support import free_port, write_config
    from tests.support.daemon import Daemon

    work = (args.work or Path(tempfile.mkdtemp(prefix="modx-bench-web-"))).absolute()
    work.mkdir(parents=True, exist_ok=True)
    host = W.machine()
    model, data = W.prepare(work)
    cpus = sorted(os.sched_getaffinity(0))[:2]
    port = free_port()
    caps = dict(max_watchers_per_client=10_000)
    env = {"MODX_LOG_LEVEL": "warning", "OMP_NUM_THREADS": "1"}
    g = Daemon(work / "state-g", [work], quota=10_000,
               extra_env={**env, "MODX_CONFIG": str(write_config(work / "g.toml", **caps))}).start()
    w = Daemon(work / "state-w", [work], quota=10_000, extra_env={
        **env, "MODX_CONFIG": str(write_config(work / "w.toml", web_listen=f"127.0.0.1:{port}", **caps))}).start()
    c = Daemon(work / "state-c", [work], quota=10_000,
               extra_env={**env, "MODX_CONFIG": str(write_config(work / "c.toml", **caps))}).start()
    runs: dict[tuple[int, int], list[dict[str, Any]]] = {}
    control: list[dict[str, Any]] = []
    plan = [(n, e, i, False) for n, e in cases for i in range(args.pairs)]
    plan += [(0, every[0], i, True) for i in range(args.control_pairs)]
    try:
        for n, e, i, is_control in plan:
            other, other_port = (c, None) if is_control else (w, port)
            r = run_pair(g, other, other_port, model, data, work, f"{'c' if is_control else n}-{e}-{i}",
                         training_overrides(args.epochs, e), n, cpus if i % 2 == 0 else cpus[::-1],
                         args.swap_seconds, first=i % 2)
            (control if is_control else runs.setdefault((n, e), [])).append(r)
            name = "control (C/G)" if is_control else f"{n} watchers, logging_steps {e}"
            print(f"  {name}, pair {i + 1}: G {r['g']:.2f}, other {r['w']:.2f} steps/s, ratio {r['ratio']:.3f} over "
                  f"{r['window_seconds']:.1f} s; daemon CPU G {100 * r['g_cpu']:.1f} %, other "
                  f"{100 * r['w_cpu']:.1f} % of a core", flush=True)
    finally:
        g.stop()
        w.stop()
        c.stop()
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return report(args, host, cases, runs, control)


def every_label(args: argparse.Namespace) -> str:
    e = int(args.logging_steps.split(",")[0])
    return f"{e} step{'s' if e > 1 else ''}"


def report(args: argparse.Namespace, host: str, cases: list[tuple[int, int]],
           runs: dict[tuple[int, int], list[dict[str, Any]]], control: list[dict[str, Any]]) -> dict[str, Any]:
    med = statistics.median
    lines = ["| watchers on each daemon | metrics point every | G steps/s | W steps/s | G daemon CPU, % of its core | "
             "W daemon CPU, % of its core | events per watcher | ratio W/G, median | pairs |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---|"]
    summary = {}
    for n, e in cases:
        rs = runs.get((n, e))
        if not rs:
            continue
        ratios = [r["ratio"] for r in rs]
        summary[f"{n} watchers, every {e}"] = {"ratio": med(ratios), "ratios": ratios}
        lines.append(f"| {n}{' (listener idle)' if n == 0 else ''} | {e} step{'s' if e > 1 else ''} | "
                     f"{med(r['g'] for r in rs):.2f} | {med(r['w'] for r in rs):.2f} | "
                     f"{100 * med(r['g_cpu'] for r in rs):.1f} | {100 * med(r['w_cpu'] for r in rs):.1f} | "
                     f"{med(r['events_per_watcher'] for r in rs):.0f} | **{med(ratios):.3f}** | "
                     f"{', '.join(f'{x:.3f}' for x in ratios)} |")
    if control:
        ratios = [r["ratio"] for r in control]
        summary["control"] = {"ratio": med(ratios), "ratios": ratios}
        lines.append(f"| control: C, a second daemon like G (no listener), against G | {every_label(args)} | "
                     f"{med(r['g'] for r in control):.2f} | {med(r['w'] for r in control):.2f} | "
                     f"{100 * med(r['g_cpu'] for r in control):.1f} | {100 * med(r['w_cpu'] for r in control):.1f} | "
                     f"- | **{med(ratios):.3f}** | {', '.join(f'{x:.3f}' for x in ratios)} |")
    print("\n".join(lines))
    if args.no_write or not summary:
        return summary
    section = (
        "## Browser listener overhead\n\n"
        "Two `modxd` train the same run side by side (the tiny 2-layer Llama, LoRA SFT, batch 4, "
        f"{args.epochs} epochs of 16 steps, one torch thread each): G without the web listener, its task watched by "
        "N gRPC WatchTask clients; W with `web_listen` on loopback, its task watched by N browser-like clients "
        "(Connect server streams, binary format, HTTP/1.1, one connection each, every message decoded). Each daemon, "
        "with its worker and all their threads, has a core of its own and the two trade cores every "
        f"{args.swap_seconds:g} s; each family of watchers runs in two processes, one pinned to each core, so the "
        "clients' CPU is taken from both alike. The ratio is W's training speed over G's on the window both were "
        "training (steps between logged points, on the workers' clocks); both daemons are polled alike meanwhile. "
        "With 0 watchers the listener is on but idle: it has no timer and no thread of its own, so it does nothing "
        "until a browser calls. With watchers, the daemon CPU columns show what a streamed message costs over each "
        "protocol (the same handlers, the same bus; "
        "uvicorn and connect-python against grpc.aio's C core). The control row runs the same pairs with a "
        "third daemon, C, set up exactly like G (no listener, no watchers), in W's place: how far apart two "
        "identical daemons land in this design on this host. "
        f"On {host}, {time.strftime('%Y-%m-%d')}. Command: `{args.command}`.\n\n" + "\n".join(lines) + "\n")
    W.replace_section(DOC, "Browser listener overhead", section)
    print(f"wrote the Browser listener overhead section of {DOC}")
    return summary


if __name__ == "__main__":
    main()
