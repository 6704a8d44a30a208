"""Benchmark: the same training through modxd with 50 watchers attached, against the engine run directly.

    .venv/bin/python bench/daemon_overhead.py [--work DIR] [--pairs N] [--watchers N] [--epochs N]
                                              [--logging-steps 10,1] [--models tiny,smollm2] [--no-write]

A (direct): `modxd.engine.train.run_training(config, emit, poll)` in a fresh spawned process, as a
worker runs it but without the daemon (emit keeps the points in a list). B (daemon): the same
config as a task of a real `modxd` (its own process, Unix socket), started while N watchers
(default 50, each its own client and connection) follow it with WatchTask to the end; the
watchers run in one separate process at SCHED_IDLE priority, so the clients' CPU (other machines'
in real use) is not counted as the daemon's. A's config is exactly what the supervisor hands B's
worker (the task's resolved parameters), on the tests' tiny random 2-layer Llama, at the schema's
default logging_steps and at 1 (a metrics point every step, the densest event stream the engine
makes), and on SmolLM2-135M-Instruct (a real model) with a point every step. Training speed
comes from the worker's own reports in both: steps per second between the first and the last
logged point, on the worker's clock (`MetricsPoint.time`), so worker start-up
(spawn, imports, model and data loading) is shown separately and the final save is out. Runs
alternate A, B, A, B, ...; the ratio is the median over pairs (a B run over the A run before it).
Written to the "Daemon overhead" section of docs/benchmarks.md unless --no-write.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _watchers as W  # noqa: E402
from common import CACHE, smollm2_hf_dir  # noqa: E402

REPO = W.REPO
DOC = REPO / "docs" / "benchmarks.md"
COMMAND = ".venv/bin/python bench/daemon_overhead.py"
TARGET = 0.98
WHY = ("What B pays for is the daemon's CPU: 0.1-0.2 ms per delivered message (section \"Metric delivery\"), "
       "most of it in gRPC's asyncio layer (each write, and its completion crossing from gRPC's poller thread to "
       "the event loop) rather than in modx's code. On two cores it is taken from the worker's two torch threads, "
       "and training can lose up to twice the CPU taken: while the daemon holds one core, the other torch thread "
       "waits at the next barrier. That accounts for the tiny model's dense streams (tens of points a second). It "
       "does not account for SmolLM2, where the daemon used about 1 % of a core: there the gap is inside this "
       "host's run-to-run spread (the pairs; with no watchers at all, `--models tiny --logging-steps 10 --pairs 4 "
       "--watchers 0` gave 0.99 with pairs 0.80-1.19 on 2026-11-29), which is wider than the 2 % the target "
       "allows. On a GPU host the worker waits for the GPU, not the CPU.")


def _default_logging_steps() -> int:
    from modxd.params import SCHEMA

    return int(next(spec.default for spec in SCHEMA if spec.key == "logging_steps"))


DEFAULT_LOGGING_STEPS = _default_logging_steps()


def training_overrides(epochs: int, logging_steps: int) -> dict[str, Any]:
    return dict(num_train_epochs=epochs, per_device_train_batch_size=4, gradient_accumulation_steps=1,
                max_seq_length=64, logging_steps=logging_steps, save_strategy="no", learning_rate=1e-3)


def run_daemon(daemon: Any, model: Path, data: Path, out: Path, overrides: dict[str, Any], watchers: int
               ) -> dict[str, Any]:
    from modx.v1 import training_pb2 as T

    from tests.daemon.helpers import loss_points, state_name

    task_id = W.create_task(daemon, model, data, out, overrides)
    watch = W.Watchers(daemon.address, task_id, watchers, background=True)
    watch.wait_ready()
    pid = daemon.proc.pid
    before = W.proc_status(pid)
    peak = [before["VmRSS"]]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.25):
            peak[0] = max(peak[0], W.proc_status(pid)["VmRSS"])

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.time()
    daemon.training.StartTask(T.StartTaskRequest(task_id=task_id))
    watched = watch.result()  # every watcher reads to the terminal event (none: poll, rarely, to stay out of the way)
    while state_name((task := daemon.training.GetTask(T.GetTaskRequest(task_id=task_id)).task).state) not in (
            "completed", "failed", "stopped"):
        time.sleep(1.0)
    wall = task.end_time.ToNanoseconds() / 1e9 - started
    done.set()
    sampler.join()
    after = W.proc_status(pid)
    if state_name(task.state) != "completed":
        raise RuntimeError(f"task {task_id} ended {state_name(task.state)}: {task.state_reason}")
    points = [(step, t) for step, _loss, t in loss_points(daemon, task_id)]
    return {**W.rate_of(points), "startup_seconds": points[0][1] - started, "wall_seconds": wall,
            "daemon_cpu_seconds": (after["cpu_ticks"] - before["cpu_ticks"]) / 100.0,
            "daemon_rss_peak": peak[0], "events_per_watcher": statistics.median([n for n, _ in watched["ends"]] or [0])}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=None, help="working dir (default: a temp dir, removed)")
    parser.add_argument("--pairs", type=int, default=5, help="A/B pairs per logging rate (default 5)")
    parser.add_argument("--watchers", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=40, help="of 16 steps each (default 40: 640 steps)")
    parser.add_argument("--logging-steps", default=f"{DEFAULT_LOGGING_STEPS},1",
                        help="comma-separated logging_steps to compare at (default: the schema's default, and 1)")
    parser.add_argument("--models", default="tiny,smollm2",
                        help="tiny (millisecond steps: the densest event stream) and/or smollm2 (a real model)")
    parser.add_argument("--smollm2-epochs", type=int, default=1, help="of 16 steps each, a point per step")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.models.split(",") if name.strip()]
    if not names or set(names) - {"tiny", "smollm2"}:
        parser.error(f"--models takes tiny and/or smollm2, not {args.models!r}")

    from tests.support.daemon import Daemon

    work = (args.work or Path(tempfile.mkdtemp(prefix="modx-bench-overhead-"))).absolute()
    work.mkdir(parents=True, exist_ok=True)
    host = W.machine()
    tiny_model, data = W.prepare(work)
    tiny_rates = [int(x) for x in args.logging_steps.split(",") if x.strip()]
    cases = [(name, every) for name in names for every in (tiny_rates if name == "tiny" else [1])]
    daemon = Daemon(work / "state", [work, CACHE], quota=10_000, extra_env={"MODX_LOG_LEVEL": "warning"}).start()
    runs: dict[tuple[str, int], tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}
    try:
        for name, every in cases:
            model = tiny_model if name == "tiny" else smollm2_hf_dir()
            overrides = training_overrides(args.epochs if name == "tiny" else args.smollm2_epochs, every)
            probe = W.create_task(daemon, model, data, work / f"probe-{name}-{every}", overrides)
            direct, via = runs.setdefault((name, every), ([], []))
            for i in range(args.pairs):
                config = W.worker_config(daemon, probe, work / f"direct-{name}-{every}-{i}")
                direct.append(W.run_direct(config))
                print(f"  {name}, logging_steps {every}, pair {i + 1}: direct "
                      f"{direct[-1]['steps_per_second']:.2f} steps/s "
                      f"(start-up {direct[-1]['startup_seconds']:.1f} s)", flush=True)
                via.append(run_daemon(daemon, model, data, work / f"daemon-{name}-{every}-{i}", overrides,
                                      args.watchers))
                print(f"  {name}, logging_steps {every}, pair {i + 1}: daemon {via[-1]['steps_per_second']:.2f} "
                      f"steps/s (start-up {via[-1]['startup_seconds']:.1f} s, "
                      f"daemon CPU {via[-1]['daemon_cpu_seconds']:.2f} s, "
                      f"{via[-1]['events_per_watcher']:.0f} events per watcher)", flush=True)
    finally:
        daemon.stop()
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)

    med = statistics.median
    lines = ["| model | metrics point every | run | steps/s (median) | spread | training s | worker start-up s | "
             "daemon CPU s | ratio B/A (pairs) |", "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    summary: dict[str, dict[str, Any]] = {}
    for (name, every), (direct, via) in runs.items():
        ratios = [b["steps_per_second"] / a["steps_per_second"] for a, b in zip(direct, via)]
        case = f"{name}, a point every {every} step{'s' if every > 1 else ''}"
        summary[case] = {"ratio": med(ratios), "ratios": ratios, "ok": med(ratios) >= TARGET,
                         "direct": direct, "daemon": via,
                         "events_per_second": med(r["events_per_watcher"] / r["wall_seconds"] for r in via)}
        for label, rows, cpu, ratio in (
                ("A: engine run directly", direct, "-", ""),
                (f"B: modxd, {args.watchers} watchers", via, f"{med(r['daemon_cpu_seconds'] for r in via):.2f}",
                 f"**{med(ratios):.3f}** ({', '.join(f'{r:.3f}' for r in ratios)})")):
            speeds = [r["steps_per_second"] for r in rows]
            lines.append(f"| {name} | {every} step{'s' if every > 1 else ''} | {label} | {med(speeds):.2f} | "
                         f"{min(speeds):.2f}-{max(speeds):.2f} | {med(r['train_seconds'] for r in rows):.1f} | "
                         f"{med(r['startup_seconds'] for r in rows):.1f} | {cpu} | {ratio} |")
    table = "\n".join(lines)
    verdict = "; ".join(
        f"{case} (about {s['events_per_second']:.1f} events/s to each of {args.watchers} watchers): B/A "
        f"{s['ratio']:.3f} (pairs {min(s['ratios']):.2f}-{max(s['ratios']):.2f}), the target (>= {TARGET}x) is "
        f"{'met' if s['ok'] else 'NOT met'}"
        for case, s in summary.items())
    print(table)
    print(verdict)
    result = {"cases": summary, "ok": all(s["ok"] for s in summary.values())}
    if args.no_write:
        return result
    steps = {name: int(med(r["steps"] for (n, _), (d, v) in runs.items() if n == name for r in d + v))
             for name, _ in runs}
    rss = max(r["daemon_rss_peak"] for _, v in runs.values() for r in v) / 2**20
    section = (
        "## Daemon overhead\n\nThe same SFT training (LoRA, batch 4, 64 short chat examples, sequences of at most "
        "64 tokens) run by the engine directly (A: `run_training` in a fresh spawned process, as a "
        "worker without the daemon) and as a task of a real `modxd` (B) with "
        f"{args.watchers} WatchTask clients attached from before the start to the end (each its own connection and "
        "client id, in their own process at SCHED_IDLE priority, so the clients' CPU, which would be other "
        "machines' in real use, is not counted as the daemon's). A's config is the one the supervisor hands B's "
        "worker. Two models: `tiny`, the tests' random 2-layer Llama, whose millisecond steps make the densest "
        f"event stream this engine can (at the schema's default `logging_steps`, {DEFAULT_LOGGING_STEPS}, and at 1), "
        "and `smollm2`, SmolLM2-135M-Instruct, a real model, with a point every step "
        f"(steps per run: {', '.join(f'{k} {v}' for k, v in steps.items())}). {args.pairs} pairs per case, "
        f"alternating A and B, on {host}, {time.strftime('%Y-%m-%d')}. Command: `{COMMAND}`. Steps/s come from the "
        "worker's own reports (first to last logged point, on the worker's clock), so worker start-up is a separate "
        "column (A: from the spawn; B: from the StartTask call, which includes the daemon's checks and its spawn) "
        "and the final save is out of both. The ratio is the median over pairs (each B run over the A run just "
        "before it), so background load hits both members of a pair alike. Daemon CPU is the daemon process's "
        f"user + system time during a B run; its peak RSS was {rss:.0f} MiB.\n\n{table}\n\n{WHY}\n\n"
        f"Result: {verdict}.\n")
    W.replace_section(DOC, "Daemon overhead", section)
    print(f"wrote the Daemon overhead section of {DOC}")
    return result


if __name__ == "__main__":
    main()
