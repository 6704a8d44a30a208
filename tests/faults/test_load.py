"""Case 6: load while a task trains.

200 concurrent watchers of the training task (150 read as fast as they can,
20 read only after a long pause, 30 never read), 50 clients listing, reading
and creating tasks, and storms of watch-then-cancel connections, all on the
daemon's Unix socket (tests/faults/load_client.py, its own process at nice 10
so its CPU is not counted against the daemon). Expected: no deadlock
(everything ends within its deadline), the daemon's memory stays bounded,
training keeps at least MIN_SPEED_RATIO of its unloaded speed, every reader sees
every event exactly once and in order, and every create is stored exactly once.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest
from modx.v1 import common_pb2 as C
from modx.v1 import system_pb2
from modx.v1 import training_pb2 as T

from tests.support.daemon import REPO

from ..daemon.helpers import create_request, sft_params, state_name, wait_event, wait_for_state
from .load_client import CLIENTS, CREATES_PER_CLIENT, IDLE, READERS, SLOW_READERS, STORM_SIZE

# A metrics event every 4 steps: a realistic event rate for a model this tiny (real steps take longer).
SLOW = dict(num_train_epochs=100, per_device_train_batch_size=1, gradient_accumulation_steps=1, logging_steps=4,
            max_seq_length=64, save_steps=100_000)
BASE_SECONDS = 3.0
# Two shared cores: the daemon's own work competes with the worker's two torch threads. Measured
# (docs/reliability.md, "Load"): the daemon uses about 0.7 of a core in the load window (creates that
# re-validate data files, storms that replay history, 200 streams at ~7 events/s; a delivered event
# costs it ~0.1 ms, bench/metric_latency.py), the niced load client takes more, and a two-thread
# worker loses more than the CPU taken from it (each op waits for its slower thread). Thirteen runs on
# the 2-core CI host with other work on it gave 0.29-0.45, and 30 rounds of bench/load_isolation.py
# (the same load) 0.21-0.41, so 0.15 is as tight as stays reliable there; the watching alone costs
# little (bench/daemon_overhead.py: 50 watchers at the default logging rate). What must hold
# everywhere is that the daemon never blocks training (reports are drained by a thread, publishing
# never waits: MAX_STALL_SECONDS); how fast training stays is the pinned case's business.
MIN_SPEED_RATIO = 0.15
# With the daemon and the load on CPU 0 and the worker alone on CPU 1 (daemon_cpus / worker_cpus),
# the load can only reach training through shared caches and memory. One round's ratio strays by
# about 10 % either way on the shared CI host, a busy loop instead of the load included
# (bench/load_isolation.py: medians 1.02 under the load, 1.01 beside the busy loop; lowest round 0.87).
MIN_SPEED_RATIO_PINNED = 0.75
MAX_STALL_SECONDS = 3.0  # no gap this long between training steps: the daemon never blocks the worker
CLIENT_NICE = 10
MAX_RSS_GROWTH = 150 << 20


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))


def _step_rate(d, task_id: str, t0: float, t1: float) -> tuple[float, float]:
    """Training steps per second between t0 and t1, and the longest gap between logged steps."""
    points = [p for p in d.training.ListMetrics(T.ListMetricsRequest(task_id=task_id, page=C.PageRequest(
        page_size=10_000))).points if p.HasField("loss") and t0 <= p.time.ToNanoseconds() / 1e9 <= t1]
    assert len(points) >= 3, f"only {len(points)} steps between {t0} and {t1}"
    times = [p.time.ToNanoseconds() / 1e9 for p in points]
    return (points[-1].step - points[0].step) / (times[-1] - times[0]), max(b - a for a, b in zip(times, times[1:]))


@pytest.mark.parametrize("pinned", [
    pytest.param(False, id="shared-cpus"),
    pytest.param(True, id="daemon-on-its-own-cpu", marks=pytest.mark.skipif(
        len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")),
])
def test_load_keeps_the_daemon_correct_bounded_and_fast(make_daemon, tiny_llama_dir, sft_jsonl, tmp_path,
                                                        pinned: bool) -> None:
    # The load client's 200 watchers share 12 channels and send no modx-client-id, so they count as
    # one client for max_watchers_per_client (default 32, limits.py): raise the cap for them.
    config = tmp_path / "modxd.toml"
    config.write_text(f"max_watchers_per_client = {READERS + SLOW_READERS + IDLE + 2 * STORM_SIZE + 10}\n")
    # Pinned: the daemon and the load generator share CPU 0, the worker has CPU 1 to itself (one torch
    # thread), as on a host where the daemon is given cores of its own.
    placement = {"MODX_DAEMON_CPUS": "0", "MODX_WORKER_CPUS": "1"} if pinned else {}
    d = make_daemon(MODX_CONFIG=str(config), **placement)
    tr = d.training
    task_id = tr.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "train",
                                                        **SLOW))).task.id
    tr.StartTask(T.StartTaskRequest(task_id=task_id))
    template = tmp_path / "template.bin"
    template.write_bytes(create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "created"))
                         .SerializeToString())
    # Started now so its imports overlap the worker's; it begins the load when told "go".
    load = subprocess.Popen(["nice", "-n", str(CLIENT_NICE), sys.executable, "-m", "tests.faults.load_client",
                             d.address, task_id, str(template)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO,
                            preexec_fn=(lambda: os.sched_setaffinity(0, {0})) if pinned else None)
    peak = [0]
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.is_set() and d.proc.poll() is None:
            try:
                peak[0] = max(peak[0], _rss(d.proc.pid))
            except OSError:
                return
            time.sleep(0.2)

    try:
        wait_event(d, task_id, T.EVENT_KIND_METRICS, lambda e: e.metrics.step >= 5)
        base_t0 = time.time()
        rss_before = peak[0] = _rss(d.proc.pid)
        time.sleep(BASE_SECONDS)
        baseline, _ = _step_rate(d, task_id, base_t0, time.time())
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        stdout, stderr = load.communicate("go\n", timeout=240)
        sampling.set()
        sampler.join()
    finally:
        load.kill()
        sampling.set()
    assert load.returncode == 0, stderr[-3000:]
    results = json.loads(stdout)

    loaded, stall = _step_rate(d, task_id, *results["load_window"])
    print(f"load ({'pinned' if pinned else 'shared'}): {loaded:.1f} steps/s under load, {baseline:.1f} without "
          f"(ratio {loaded / baseline:.2f}), longest step gap {stall:.2f}s, "
          f"daemon RSS +{(peak[0] - rss_before) >> 20} MiB")
    bound = MIN_SPEED_RATIO_PINNED if pinned else MIN_SPEED_RATIO
    assert loaded >= bound * baseline, f"{loaded:.1f} steps/s under load, {baseline:.1f} without"
    assert stall < MAX_STALL_SECONDS, f"training stalled {stall:.1f}s under load"
    assert peak[0] - rss_before < MAX_RSS_GROWTH, f"daemon RSS grew {(peak[0] - rss_before) >> 20} MiB"

    final = wait_for_state(d, task_id, {"stopped", "failed", "completed"}, timeout=60)
    assert state_name(final.state) == "stopped"
    history = [r.event for r in tr.WatchTask(T.WatchTaskRequest(task_id=task_id, history_only=True))]
    expected = [e.seq for e in history]
    assert expected == list(range(1, len(expected) + 1))
    assert len(results["readers"]) == READERS and len(results["slow"]) == SLOW_READERS
    for seqs in results["readers"] + results["slow"]:
        assert [s for s, _, _ in seqs] == expected, "a watcher lost or repeated events"
        assert seqs[-1][1] == "state_change" and seqs[-1][2] == C.TASK_STATE_STOPPED

    created = results["created"]  # the creates answered within the load window
    assert created and len(created) == len(set(created)) <= CLIENTS * CREATES_PER_CLIENT
    stored = tr.ListTasks(T.ListTasksRequest(page=C.PageRequest(page_size=1000))).tasks
    names = [t.name for t in stored if t.name.startswith("load-")]
    assert len(names) == len(set(names)), "a create was stored twice"
    assert set(created) <= {t.id for t in stored}, "an answered create was lost"
    assert len(names) <= len(created) + results["clients_unfinished"]
    assert d.healthy()
    status = d.system.GetStatus(system_pb2.GetStatusRequest())
    assert status.tasks_total == len(stored) == len(names) + 1
