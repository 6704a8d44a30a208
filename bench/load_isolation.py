"""Benchmark: does a daemon under heavy load slow the training it runs?

    .venv/bin/python bench/load_isolation.py [--rounds N] [--work DIR] [--no-write]

The load is the fault suite's (tests/faults/load_client.py): 200 watchers of the training task
(30 never reading), 50 clients listing, reading and creating tasks, and storms of watch-then-cancel
connections, for 6 s. Each round starts a training task on a real `modxd` (the tests' tiny Llama, a
metrics point every 4 steps), measures its speed for 3 s with the load client (at nice 10, as in the
fault suite) started but idle, then for the 6 s of load, and stops the task; the ratio is loaded
over unloaded speed, from the worker's own step times. Rounds alternate between two placements on this 2-CPU host:

- shared: no pinning; the worker's two torch threads, the daemon and the load client share both CPUs;
- pinned: `daemon_cpus = "0"`, `worker_cpus = "1"` (one torch thread), the load client on CPU 0.

A control round on the pinned daemon swaps the load for a busy loop on CPU 0: what any work on the
other CPU costs the worker on this machine, and how far one round's ratio strays from 1 with no
daemon involved. Written to the "Load isolation" section of docs/benchmarks.md unless --no-write.

It also judges every round against the bounds that used to be assertions of tests/faults/test_load.py
(speed ratios and wall-clock gaps belong in a benchmark, not in a test on a busy host): training keeps
at least MIN_RATIO[placement] of its unloaded speed, and no gap between two logged steps under the load
reaches MAX_STALL_SECONDS (a longer one would mean the daemon blocked the worker). The exit status is 1
when a round misses a bound, with the rounds named.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _watchers as W  # noqa: E402,F401  (puts the repo, the daemon and the client on sys.path)
from common import machine, median, write_section  # noqa: E402

COMMAND = ".venv/bin/python bench/load_isolation.py"
IDLE_SECONDS = 3.0
TARGET = 0.98  # the daemon-overhead target of the performance issue
# Per-round bounds. Shared: on two shared cores the daemon uses about 0.7 of a core in the load window
# (creates that re-validate data files, storms that replay history, 200 streams at ~7 events/s; a
# delivered event costs it ~0.1 ms, bench/metric_latency.py), the niced load client takes more, and a
# two-thread worker loses more than the CPU taken from it (each op waits for its slower thread): 13
# runs of the old test on the 2-core CI host gave 0.29-0.45, 30 rounds of this benchmark 0.21-0.41, so
# 0.15. Pinned: the load cannot take the worker's CPU; one round strays by about 10 % either way on the
# shared host (a busy loop instead of the load included: medians 1.02 and 1.01, lowest round 0.87), so 0.75.
MIN_RATIO = {"shared": 0.15, "pinned": 0.75}
MAX_STALL_SECONDS = 3.0  # no gap this long between training steps under the load


def _round(d: Any, pinned: bool, model: Path, data: Path, out: Path, template: Path, burn: bool) -> dict[str, float]:
    from modx.v1 import training_pb2 as T

    from tests.daemon.helpers import create_request, sft_params, wait_event, wait_for_state
    from tests.faults.load_client import SLOW, step_rate

    task_id = d.training.CreateTask(create_request(**sft_params(model, data, out, **SLOW))).task.id
    d.training.StartTask(T.StartTaskRequest(task_id=task_id))

    def place() -> None:  # niced as in the fault suite, so the client's CPU is not counted as the daemon's
        os.nice(10)
        if pinned:
            os.sched_setaffinity(0, {0})

    if burn:
        load = subprocess.Popen([sys.executable, "-c", "while True: pass"], preexec_fn=place)
    else:  # imports done before the idle window: the client then waits on stdin
        load = subprocess.Popen([sys.executable, "-m", "tests.faults.load_client", d.address, task_id, str(template)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                cwd=W.REPO, preexec_fn=place)
    try:
        wait_event(d, task_id, T.EVENT_KIND_METRICS, lambda e: e.metrics.step >= 5)
        if burn:  # the busy loop ran from the start: measure it, then the same task without it
            t0 = time.time()
            time.sleep(6.0)
            loaded, stall = step_rate(d, task_id, t0, time.time())
            load.kill()
            t0 = time.time()
            time.sleep(IDLE_SECONDS)
            idle, _ = step_rate(d, task_id, t0, time.time())
            d.training.StopTask(T.StopTaskRequest(task_id=task_id))
        else:
            time.sleep(2.0)  # the client's imports settle
            t0 = time.time()
            time.sleep(IDLE_SECONDS)
            idle, _ = step_rate(d, task_id, t0, time.time())
            stdout, _ = load.communicate("go\n", timeout=240)
            loaded, stall = step_rate(d, task_id, *json.loads(stdout)["load_window"])  # the client stops the task
    finally:
        load.kill()
        load.wait()
    wait_for_state(d, task_id, {"stopped", "failed", "completed"}, timeout=60)
    return {"idle": idle, "loaded": loaded, "ratio": loaded / idle, "stall": stall}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=12,
                        help="rounds of each placement and of the control (default 12: one round strays by ~10 %%)")
    parser.add_argument("--work", type=Path, default=None, help="working dir (default: a temp dir, removed)")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args(argv)
    args.command = " ".join([COMMAND, *(sys.argv[1:] if argv is None else argv)])
    if len(os.sched_getaffinity(0)) < 2:
        sys.exit("load_isolation needs two CPUs")
    from tests.daemon.helpers import create_request, sft_params
    from tests.faults.load_client import IDLE, READERS, SLOW_READERS, STORM_SIZE
    from tests.support.daemon import Daemon

    work = args.work or Path(tempfile.mkdtemp(prefix="modx-bench-load-"))
    work.mkdir(parents=True, exist_ok=True)
    model, data = W.prepare(work)
    config = work / "modxd.toml"
    config.write_text(f"max_watchers_per_client = {READERS + SLOW_READERS + IDLE + 2 * STORM_SIZE + 10}\n"
                      "max_pending_tasks = 100000\n")
    template = work / "template.bin"
    template.write_bytes(create_request(**sft_params(model, data, work / "created")).SerializeToString())
    env = {"MODX_CONFIG": str(config), "TRANSFORMERS_VERBOSITY": "error"}
    daemons = {"shared": Daemon(work / "state-shared", [work], quota=100_000, extra_env=env).start(),
               "pinned": Daemon(work / "state-pinned", [work], quota=100_000,
                                extra_env={**env, "MODX_DAEMON_CPUS": "0", "MODX_WORKER_CPUS": "1"}).start()}
    rounds: dict[str, list[dict[str, float]]] = {"shared": [], "pinned": [], "pinned, busy loop instead": []}
    try:
        for i in range(args.rounds):
            for name, d in daemons.items():
                r = _round(d, name == "pinned", model, data, work / f"out-{name}-{i}", template, burn=False)
                rounds[name].append(r)
                print(f"  {name} {i + 1}: {r['idle']:.1f} steps/s idle, {r['loaded']:.1f} under load, "
                      f"ratio {r['ratio']:.3f}, longest step gap {r['stall']:.2f}s", flush=True)
            r = _round(daemons["pinned"], True, model, data, work / f"out-burn-{i}", template, burn=True)
            rounds["pinned, busy loop instead"].append(r)
            print(f"  busy loop {i + 1}: {r['idle']:.1f} steps/s idle, {r['loaded']:.1f} beside it, "
                  f"ratio {r['ratio']:.3f}", flush=True)
    finally:
        for d in daemons.values():
            d.kill()
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return report(args, rounds)


def judge(rounds: dict[str, list[dict[str, float]]]) -> list[str]:
    """The rounds that miss a bound (MIN_RATIO of their placement, MAX_STALL_SECONDS), as sentences."""
    misses = []
    for name, bound in MIN_RATIO.items():
        for i, r in enumerate(rounds.get(name, []), start=1):
            if r["ratio"] < bound:
                misses.append(f"{name} round {i}: ratio {r['ratio']:.3f} below {bound}")
            if r["stall"] >= MAX_STALL_SECONDS:
                misses.append(f"{name} round {i}: a {r['stall']:.2f}s gap between steps (bound {MAX_STALL_SECONDS}s)")
    return misses


def report(args: argparse.Namespace, rounds: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    lines = ["| placement | load on CPU 0 | steps/s unloaded (median) | steps/s loaded (median) | ratio, median | "
             "rounds | longest step gap |", "|---|---|---:|---:|---:|---|---:|"]
    what = {"shared": "the fault suite's load (both CPUs shared)", "pinned": "the fault suite's load",
            "pinned, busy loop instead": "a busy loop (control)"}
    for name, runs in rounds.items():
        ratios = [r["ratio"] for r in runs]
        lines.append(f"| {name.split(',')[0]} | {what[name]} | {median([r['idle'] for r in runs]):.1f} | "
                     f"{median([r['loaded'] for r in runs]):.1f} | **{median(ratios):.3f}** | "
                     f"{', '.join(f'{x:.3f}' for x in ratios)} | {max(r['stall'] for r in runs):.2f} s |")
    pinned = median([r["ratio"] for r in rounds["pinned"]])
    control = median([r["ratio"] for r in rounds["pinned, busy loop instead"]])
    verdict = (f"with the daemon on a CPU of its own, training under the load keeps {pinned:.3f} of its speed "
               f"(target >= {TARGET}: {'met' if pinned >= TARGET else 'NOT met'}); a busy loop on the daemon's CPU "
               f"gives {control:.3f}; sharing both CPUs, {median([r['ratio'] for r in rounds['shared']]):.3f}")
    misses = judge(rounds)
    bounds = (f"every round within the bounds (ratio >= {MIN_RATIO['shared']} shared, >= {MIN_RATIO['pinned']} "
              f"pinned; no step gap of {MAX_STALL_SECONDS:g} s)" if not misses else
              f"{len(misses)} bound(s) missed: " + "; ".join(misses))
    verdict += "; " + bounds
    print("\n".join(lines) + "\n\n" + verdict)
    if not args.no_write:
        write_section("Load isolation", (
            "Training speed under the fault suite's load (tests/faults/load_client.py, at nice 10: 200 watchers, 30 of them "
            "never reading, 50 clients listing, reading and creating tasks, watch-then-cancel storms; 6 s) "
            "over its speed just before (3 s, the load client started and idle), on a real `modxd` training the "
            "tests' tiny Llama with a point every 4 steps; one training task per round, the placements "
            f"alternating, {args.rounds} rounds each, on {machine()}, {time.strftime('%Y-%m-%d')}. Command: "
            f"`{args.command}`. Pinned: `daemon_cpus = \"0\"`, `worker_cpus = \"1\"` (one "
            "torch thread) and the load client on CPU 0; shared: no pinning, the worker's two torch threads. "
            "The control swaps the load for a busy loop on CPU 0: one round's ratio strays that far from 1 with "
            "no daemon involved.\n\n" + "\n".join(lines) + f"\n\nResult: {verdict}. A daemon that shares the "
            "worker's CPUs takes what it uses from training (here the load costs it most of a core); given CPUs "
            "of its own, it leaves the worker's alone, so on a host with cores to spare, pin it "
            "(docs/deploy.md).\n"))
    return {"rounds": rounds, "pinned": pinned, "control": control, "misses": misses}


if __name__ == "__main__":
    sys.exit(1 if main()["misses"] else 0)
