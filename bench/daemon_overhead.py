"""Benchmark: the same training through modxd with 50 watchers attached, against the engine run directly.

    .venv/bin/python bench/daemon_overhead.py [--work DIR] [--pairs N] [--alternate-pairs N] [--watchers N]
                                              [--epochs N] [--logging-steps 10,1] [--models tiny,smollm2]
                                              [--no-write]

A (direct): `modxd.engine.train.run_training(config, emit, poll)` in a fresh spawned process, as a
worker runs it but without the daemon (emit keeps the points in a list). B (daemon): the same
config as a task of a real `modxd` (its own process, Unix socket), started while N watchers
(default 50, each its own client and connection) follow it with WatchTask to the end. A's config
is exactly what the supervisor hands B's worker (the task's resolved parameters). Cases: the
tests' tiny random 2-layer Llama at the schema's default logging_steps (the target's case) and at
1 (a metrics point every step: a stress case, tens of points a second), and SmolLM2-135M-Instruct
(a real model) with a point every step. Training speed comes from the worker's own reports in
both: steps per second between logged points, on the worker's clock (`MetricsPoint.time`), so
worker start-up (spawn, imports, model and data loading) and the final save are out.

Two designs, both in this one process tree:

- side by side (the verdict): A and B run at the same time, one torch thread each, each on its own
  core (A on one, the daemon with its worker on the other), trading cores every second. A slow
  spell of a shared host, or of one of its cores, hits both alike, so the ratio (B over A, on the
  window both were training) resolves a few per cent. It is hard on modx: the daemon gets no spare core and takes
  every cycle it uses from its own worker. The watchers run in two processes, one pinned to each
  core, so their CPU (other machines' in real use) is taken from A and B alike.
- alternating (the reference): A, B, A, B, ... one at a time with the default threads, the
  watchers at SCHED_IDLE priority. Closer to a real run, but on a shared host one run differs
  from the next by 10-20 %, far more than the 2 % the target allows.

After a case's side-by-side pairs, a bare gRPC server (bench/_grpc_floor.py) sends as many messages of
the same size a second to as many clients: gRPC's own cost of that fan-out, once with the watchers'
channel arguments (modxctl's) and once with gRPC's defaults (--no-floor skips it).

The ratio is the median over pairs. Written to the "Daemon overhead" section of
docs/benchmarks.md unless --no-write.
"""
from __future__ import annotations

import argparse
import bisect
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modxd.train_config import TrainConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _watchers as W  # noqa: E402
from _grpc_floor import fanout_cpu_share  # noqa: E402
from common import CACHE, smollm2_hf_dir  # noqa: E402

REPO = W.REPO
DOC = REPO / "docs" / "benchmarks.md"
COMMAND = ".venv/bin/python bench/daemon_overhead.py"
TARGET = 0.98


def _default_logging_steps() -> int:
    from modxd.params import SCHEMA

    return int(next(spec.default for spec in SCHEMA if spec.key == "logging_steps"))


DEFAULT_LOGGING_STEPS = _default_logging_steps()


def training_overrides(epochs: int, logging_steps: int) -> dict[str, Any]:
    return dict(num_train_epochs=epochs, per_device_train_batch_size=4, gradient_accumulation_steps=1,
                max_seq_length=64, logging_steps=logging_steps, save_strategy="no", learning_rate=1e-3)


class CpuSampler:
    """CPU seconds of a process over time (every 0.1 s), to read its use over any window later."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[tuple[float, float]] = []
        self.peak_rss = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._take()
        self._thread.start()

    def _take(self) -> None:
        status = W.proc_status(self.pid)
        self.samples.append((time.time(), status["cpu_ticks"] / 100.0))
        self.peak_rss = max(self.peak_rss, status["VmRSS"])

    def _run(self) -> None:
        while not self._done.wait(0.1):
            self._take()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()
        self._take()

    def at(self, when: float) -> float:
        times = [t for t, _ in self.samples]
        i = min(max(bisect.bisect_left(times, when), 1), len(times) - 1)
        (t0, c0), (t1, c1) = self.samples[i - 1], self.samples[i]
        return c0 + (c1 - c0) * min(max((when - t0) / (t1 - t0), 0.0), 1.0) if t1 > t0 else c1


def run_daemon(daemon: Any, model: Path, data: Path, out: Path, overrides: dict[str, Any], watchers: int
               ) -> dict[str, Any]:
    from modx.v1 import training_pb2 as T

    from tests.daemon.helpers import loss_points, state_name

    task_id = W.create_task(daemon, model, data, out, overrides)
    watch = W.Watchers(daemon.address, task_id, watchers, background=True)
    watch.wait_ready()
    sampler = CpuSampler(daemon.proc.pid)
    started = time.time()
    daemon.training.StartTask(T.StartTaskRequest(task_id=task_id))
    watched = watch.result()  # every watcher reads to the terminal event (none: poll, rarely, to stay out of the way)
    while state_name((task := daemon.training.GetTask(T.GetTaskRequest(task_id=task_id)).task).state) not in (
            "completed", "failed", "stopped"):
        time.sleep(1.0)
    wall = task.end_time.ToNanoseconds() / 1e9 - started
    sampler.stop()
    if state_name(task.state) != "completed":
        raise RuntimeError(f"task {task_id} ended {state_name(task.state)}: {task.state_reason}")
    points = [(step, t) for step, _loss, t in loss_points(daemon, task_id)]
    return {**W.rate_of(points), "startup_seconds": points[0][1] - started, "wall_seconds": wall,
            "daemon_cpu_seconds": sampler.samples[-1][1] - sampler.samples[0][1],
            "daemon_rss_peak": sampler.peak_rss,
            "events_per_watcher": statistics.median([n for n, _ in watched["ends"]] or [0])}


def rate_within(points: list[tuple[int, float]], lo: float, hi: float) -> float:
    """Steps per second between the first and the last logged point inside [lo, hi]."""
    inside = [(step, t) for step, t in points if lo <= t <= hi]
    if len(inside) < 2:
        raise RuntimeError("A and B overlapped for fewer than two logged points: raise --epochs")
    return W.rate_of(inside)["steps_per_second"]


class CoreSwapper:
    """Keeps A on one core and B (the daemon, its worker, their threads) on the other, and swaps the two
    every `seconds`, so each spends half its time on each core and a core that is slower for a while
    (a shared host's other tenants) slows both alike."""

    def __init__(self, direct_pid: int, daemon_pid: int, cpus: list[int], seconds: float) -> None:
        self.direct_pid, self.daemon_pid, self.cpus, self.seconds = direct_pid, daemon_pid, cpus, seconds
        self.swaps = 0
        self._done = threading.Event()
        self._place()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _place(self) -> None:
        import psutil

        b_cpu, a_cpu = self.cpus[self.swaps % 2], self.cpus[(self.swaps + 1) % 2]
        try:
            W.pin_process(self.direct_pid, {a_cpu})
        except FileNotFoundError:
            pass  # A has finished
        for proc in [psutil.Process(self.daemon_pid), *psutil.Process(self.daemon_pid).children(recursive=True)]:
            try:
                W.pin_process(proc.pid, {b_cpu})
            except FileNotFoundError:
                pass

    def _run(self) -> None:
        while not self._done.wait(self.seconds):
            self.swaps += 1
            self._place()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def run_side_by_side(daemon: Any, model: Path, data: Path, out: Path, overrides: dict[str, Any], watchers: int,
                     config: "TrainConfig", cpus: list[int], swap_seconds: float) -> dict[str, Any]:
    """A and B at once, each on a core of its own (swapped every `swap_seconds`); half the watchers on each."""
    from modx.v1 import training_pb2 as T

    from tests.daemon.helpers import loss_points, state_name

    task_id = W.create_task(daemon, model, data, out, overrides)
    watch = W.Watchers(daemon.address, task_id, watchers, per_process=max(1, -(-watchers // 2)), cpus=cpus)
    watch.wait_ready()
    sampler = CpuSampler(daemon.proc.pid)
    direct = W.DirectRun(config, {cpus[1]}, env={"OMP_NUM_THREADS": "1"})
    swapper = CoreSwapper(direct.proc.pid, daemon.proc.pid, cpus, swap_seconds)
    daemon.training.StartTask(T.StartTaskRequest(task_id=task_id))
    try:
        a = direct.result()
        watched = watch.result()
        while state_name((task := daemon.training.GetTask(T.GetTaskRequest(task_id=task_id)).task).state) not in (
                "completed", "failed", "stopped"):
            time.sleep(0.5)
    finally:
        swapper.stop()
    sampler.stop()
    if state_name(task.state) != "completed":
        raise RuntimeError(f"task {task_id} ended {state_name(task.state)}: {task.state_reason}")
    b_points = [(step, t) for step, _loss, t in loss_points(daemon, task_id)]
    lo, hi = max(a["points"][0][1], b_points[0][1]), min(a["points"][-1][1], b_points[-1][1])
    a_rate, b_rate = rate_within(a["points"], lo, hi), rate_within(b_points, lo, hi)
    return {"a": a_rate, "b": b_rate, "ratio": b_rate / a_rate, "window_seconds": hi - lo,
            "daemon_cpu_share": (sampler.at(hi) - sampler.at(lo)) / (hi - lo), "daemon_rss_peak": sampler.peak_rss,
            "events_per_watcher": statistics.median([n for n, _ in watched["ends"]] or [0]),
            "message_bytes": int(statistics.median(watched["sizes"] or [0])),
            "steps": b_points[-1][0] - b_points[0][0], "swaps": swapper.swaps}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=None, help="working dir (default: a temp dir, removed)")
    parser.add_argument("--pairs", type=int, default=8, help="side-by-side pairs per case (default 8)")
    parser.add_argument("--alternate-pairs", type=int, default=3,
                        help="alternating A/B pairs per case, the reference design (default 3; 0: skip)")
    parser.add_argument("--swap-seconds", type=float, default=1.0,
                        help="side by side: A and B trade cores this often (default 1 s)")
    parser.add_argument("--watchers", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=100,
                        help="tiny model: of 16 steps each (default 100: 1600 steps, 15-45 s of training)")
    parser.add_argument("--logging-steps", default=f"{DEFAULT_LOGGING_STEPS},1",
                        help="tiny model: comma-separated logging_steps (default: the schema's default, and 1)")
    parser.add_argument("--models", default="tiny,smollm2",
                        help="tiny (millisecond steps: the densest event stream) and/or smollm2 (a real model)")
    parser.add_argument("--smollm2-epochs", type=int, default=1, help="of 16 steps each, a point per step")
    parser.add_argument("--no-floor", action="store_true",
                        help="skip the bare gRPC server that measures gRPC's own cost of the same messages")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args(argv)
    args.command = " ".join([COMMAND, *(sys.argv[1:] if argv is None else argv)])
    names = [name.strip() for name in args.models.split(",") if name.strip()]
    if not names or set(names) - {"tiny", "smollm2"}:
        parser.error(f"--models takes tiny and/or smollm2, not {args.models!r}")
    if len(os.sched_getaffinity(0)) < 2 and args.pairs:
        parser.error("the side-by-side design needs two CPUs; use --pairs 0 --alternate-pairs N")

    from tests.support.daemon import Daemon

    work = (args.work or Path(tempfile.mkdtemp(prefix="modx-bench-overhead-"))).absolute()
    work.mkdir(parents=True, exist_ok=True)
    host = W.machine()
    tiny_model, data = W.prepare(work)
    tiny_rates = [int(x) for x in args.logging_steps.split(",") if x.strip()]
    cases = [(name, every) for name in names for every in (tiny_rates if name == "tiny" else [1])]
    cpus = sorted(os.sched_getaffinity(0))[:2]
    quiet = {"MODX_LOG_LEVEL": "warning"}
    side_daemon = Daemon(work / "state-side", [work, CACHE], quota=10_000,
                         extra_env={**quiet, "OMP_NUM_THREADS": "1"}).start()
    alt_daemon = Daemon(work / "state-alt", [work, CACHE], quota=10_000, extra_env=quiet).start()
    side: dict[tuple[str, int], list[dict[str, Any]]] = {}
    floors: dict[tuple[str, int], float] = {}  # clients with modxctl's channel arguments, as the watchers
    default_floors: dict[tuple[str, int], float] = {}  # clients with gRPC's defaults (BDP probing on)
    alternate: dict[tuple[str, int], tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}
    try:
        for name, every in cases:
            model = tiny_model if name == "tiny" else smollm2_hf_dir()
            overrides = training_overrides(args.epochs if name == "tiny" else args.smollm2_epochs, every)
            label = f"{name}, logging_steps {every}"
            probe = W.create_task(side_daemon, model, data, work / f"probe-{name}-{every}", overrides)
            for i in range(args.pairs):
                config = W.worker_config(side_daemon, probe, work / f"side-a-{name}-{every}-{i}")
                r = run_side_by_side(side_daemon, model, data, work / f"side-b-{name}-{every}-{i}", overrides,
                                     args.watchers, config, cpus if i % 2 == 0 else cpus[::-1], args.swap_seconds)
                side.setdefault((name, every), []).append(r)
                print(f"  {label}, side by side {i + 1}: A {r['a']:.2f}, B {r['b']:.2f} steps/s, "
                      f"B/A {r['ratio']:.3f} over {r['window_seconds']:.1f} s ({r['swaps']} core swaps); the "
                      f"daemon used {100 * r['daemon_cpu_share']:.1f} % of its core", flush=True)
            if args.pairs and not args.no_floor:
                runs = side[(name, every)]
                rate = statistics.median(r["b"] for r in runs) / every  # metrics points a second, to each watcher
                size = int(statistics.median(r["message_bytes"] for r in runs)) or 128
                floors[(name, every)] = fanout_cpu_share(args.watchers, rate, size, cpus=cpus,
                                                          client_options=W.watcher_channel_options(side_daemon.address))
                default_floors[(name, every)] = fanout_cpu_share(args.watchers, rate, size, cpus=cpus)
                print(f"  {label}: a bare gRPC server sending {rate:.1f} messages of {size} bytes a second to "
                      f"{args.watchers} clients uses {100 * floors[(name, every)]:.1f} % of a core "
                      f"({100 * default_floors[(name, every)]:.1f} % if the clients keep gRPC's defaults)", flush=True)
            probe = W.create_task(alt_daemon, model, data, work / f"probe-alt-{name}-{every}", overrides)
            for i in range(args.alternate_pairs):
                direct, via = alternate.setdefault((name, every), ([], []))
                direct.append(W.run_direct(W.worker_config(alt_daemon, probe, work / f"alt-a-{name}-{every}-{i}")))
                via.append(run_daemon(alt_daemon, model, data, work / f"alt-b-{name}-{every}-{i}", overrides,
                                      args.watchers))
                print(f"  {label}, alternating {i + 1}: A {direct[-1]['steps_per_second']:.2f}, "
                      f"B {via[-1]['steps_per_second']:.2f} steps/s, B/A "
                      f"{via[-1]['steps_per_second'] / direct[-1]['steps_per_second']:.3f}", flush=True)
    finally:
        side_daemon.stop()
        alt_daemon.stop()
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return report(args, host, cases, side, alternate, floors, default_floors)


def _case(name: str, every: int) -> str:
    return f"{name}, a point every {every} step{'s' if every > 1 else ''}"


def _is_target_case(name: str, every: int) -> bool:
    """The target is about a run as users start it: the schema's logging_steps (SmolLM2's short run
    logs every step only so that its few steps give a rate)."""
    return name == "smollm2" or every == DEFAULT_LOGGING_STEPS


def report(args: argparse.Namespace, host: str, cases: list[tuple[str, int]],
           side: dict[tuple[str, int], list[dict[str, Any]]],
           alternate: dict[tuple[str, int], tuple[list[dict[str, Any]], list[dict[str, Any]]]],
           floors: dict[tuple[str, int], float], default_floors: dict[tuple[str, int], float]) -> dict[str, Any]:
    med = statistics.median
    side_lines = ["| case | A steps/s (median) | B steps/s (median) | daemon's CPU, % of its core | bare gRPC, same "
                  "messages, % of a core | same, clients with gRPC's defaults | events per watcher | ratio B/A, median | pairs |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    summary: dict[str, dict[str, Any]] = {}
    for key in cases:
        runs = side.get(key)
        if not runs:
            continue
        ratios = [r["ratio"] for r in runs]
        target = _is_target_case(*key)
        summary[_case(*key)] = {"ratio": med(ratios), "ratios": ratios, "target_case": target,
                                "grpc_floor": floors.get(key),
                                "ok": med(ratios) >= TARGET, "runs": runs}
        side_lines.append(
            f"| {_case(*key)}{'' if target else ' (stress)'} | {med(r['a'] for r in runs):.2f} | "
            f"{med(r['b'] for r in runs):.2f} | {100 * med(r['daemon_cpu_share'] for r in runs):.1f} | "
            f"{f'{100 * floors[key]:.1f}' if key in floors else '-'} | "
            f"{f'{100 * default_floors[key]:.1f}' if key in default_floors else '-'} | "
            f"{med(r['events_per_watcher'] for r in runs):.0f} | **{med(ratios):.3f}** | "
            f"{', '.join(f'{x:.3f}' for x in ratios)} |")
    alt_lines = ["| case | A steps/s (median) | A spread | B steps/s (median) | B spread | daemon CPU s | "
                 "ratio B/A, median | pairs |", "|---|---:|---:|---:|---:|---:|---:|---|"]
    for key in cases:
        if not alternate.get(key):
            continue
        direct, via = alternate[key]
        ratios = [b["steps_per_second"] / a["steps_per_second"] for a, b in zip(direct, via)]
        a_speeds, b_speeds = [r["steps_per_second"] for r in direct], [r["steps_per_second"] for r in via]
        alt_lines.append(
            f"| {_case(*key)} | {med(a_speeds):.2f} | {min(a_speeds):.2f}-{max(a_speeds):.2f} | {med(b_speeds):.2f} | "
            f"{min(b_speeds):.2f}-{max(b_speeds):.2f} | {med(r['daemon_cpu_seconds'] for r in via):.2f} | "
            f"{med(ratios):.3f} | {', '.join(f'{x:.3f}' for x in ratios)} |")
    verdicts = [f"{case}: B/A {s['ratio']:.3f} (pairs {min(s['ratios']):.3f}-{max(s['ratios']):.3f}), "
                + (f"the target (>= {TARGET}x) is {'met' if s['ok'] else 'NOT met'}" if s["target_case"]
                   else "a stress case beyond the target's")
                for case, s in summary.items()]
    print("\n".join(side_lines + [""] + alt_lines + [""] + verdicts))
    result = {"cases": summary, "ok": all(s["ok"] for s in summary.values() if s["target_case"])}
    if args.no_write or not summary:
        return result
    all_runs = [r for runs in side.values() for r in runs]
    steps = {name: int(med(r["steps"] for (n, _), runs in side.items() if n == name for r in runs))
             for name, _ in side}
    rss = max(r["daemon_rss_peak"] for r in all_runs) / 2**20
    cpu_note = (" In each case B's loss against A is about the daemon's share of its core (the table): a fixed "
                "cost per metrics point (the pipe, one SQLite transaction) plus a gRPC write per point per "
                "watcher, so it grows with points per second times watchers.")
    if floors:
        parts = [f"{_case(*key)}: the daemon {100 * med(r['daemon_cpu_share'] for r in side[key]):.1f} %, gRPC "
                 f"alone {100 * floor:.1f} %, {100 * default_floors[key]:.1f} % with gRPC's default clients"
                 for key, floor in floors.items() if side.get(key) and key in default_floors]
        cpu_note += (" The column \"bare gRPC\" is a server with no modx code in it (bench/_grpc_floor.py: grpc.aio on "
                     "uvloop over a Unix socket, as modxd) sending as many messages of the same size a second to as "
                     "many clients, alone on one of these cores: about what any Python gRPC service pays for that "
                     f"fan-out ({'; '.join(parts)}). The daemon, on a busy core, finds more messages ready each time "
                     "it wakes and can pay a little less. So nearly all of its cost is gRPC's per-message cost, and "
                     "while it shares its worker's core B cannot get much closer to A than that allows, whatever "
                     "modx does per message. The watchers, and the bare server's clients in the first of those "
                     "columns, use modxctl's channel arguments: on the Unix socket they turn off gRPC's "
                     "bandwidth-delay probing, which makes the server answer a PING every few hundred milliseconds "
                     "per connection in its first minute (the second column: clients with gRPC's defaults). The "
                     "probes are spaced in time, so they cost most at low message rates and in short runs; once a "
                     "connection is minutes old they are seconds apart.")
    section = (
        "## Daemon overhead\n\nThe same SFT training (LoRA, batch 4, 64 short chat examples, sequences of at most "
        "64 tokens) run by the engine directly (A: `run_training` in a fresh spawned process, as a worker without "
        f"the daemon) and as a task of a real `modxd` (B) with {args.watchers} WatchTask clients attached from "
        "before the start to the end, each its own connection and client id. A's config is the one the "
        "supervisor hands B's worker. Cases: `tiny`, the tests' random 2-layer Llama, whose millisecond steps make "
        f"the densest event stream this engine can, at the schema's default `logging_steps` ({DEFAULT_LOGGING_STEPS}) "
        "and at 1 (a stress case: tens of points a second to each watcher), and `smollm2`, SmolLM2-135M-Instruct, "
        "a real model, with a point every step (steps per run: "
        f"{', '.join(f'{k} {v}' for k, v in steps.items())}). On {host}, {time.strftime('%Y-%m-%d')}. "
        f"Command: `{args.command}`. Speeds are the workers' own reports (steps between logged points, on the "
        "worker's clock), so start-up and the final save are out.\n\n"
        f"**Side by side** (the verdict; {args.pairs} pairs per case): A and B train at the same time with one "
        "torch thread each, A pinned to one core and the daemon, with the worker it spawns and all their threads, to "
        f"the other, and the two trade cores every {args.swap_seconds:g} s; the ratio is B's speed over A's on the "
        "window both were training. A slow spell of the shared host, or of one of its cores, hits both alike, so "
        "pairs agree to a few per cent (run one after the other, they differ by 10-20 %). It is hard on modx: the "
        "daemon has no spare core and takes every cycle it uses from its own worker. The watchers run in two "
        "processes, one pinned to each core, so their CPU (other machines' in real use) is taken from A and B "
        f"alike. The daemon's CPU is its share of its core over the window; its peak RSS was {rss:.0f} MiB.\n\n"
        + "\n".join(side_lines) + "\n\n"
        + (f"**Alternating** (the reference; {args.alternate_pairs} pairs per case): A, B, A, B, ... one at a time "
           "with torch's default threads and the watchers at SCHED_IDLE priority. Closer to a real run, but on "
           "this shared host one run differs from the next by 10-20 % (the spreads), far more than the 2 % the "
           "target allows, so it cannot decide the target.\n\n" + "\n".join(alt_lines) + "\n\n"
           if any(alternate.values()) else "")
        + f"Result: {'; '.join(verdicts)}.{cpu_note} On a GPU host the worker waits for the GPU, and the daemon "
        "has cores of its own.\n")
    W.replace_section(DOC, "Daemon overhead", section)
    print(f"wrote the Daemon overhead section of {DOC}")
    return result


if __name__ == "__main__":
    main()
