"""Case 6: load while a task trains.

200 concurrent watchers of the training task (150 read as fast as they can,
20 read only after a long pause, 30 never read), 50 clients listing, reading
and creating tasks, and storms of watch-then-cancel connections, all on the
daemon's Unix socket (tests/faults/load_client.py, its own process at nice 10
so its CPU is not counted against the daemon). Expected: no deadlock
(everything ends within its deadline), the daemon's memory stays bounded,
the worker is never held up for good (it stops when asked, within a generous
deadline) and every step it logged is stored (no metrics point is missing),
every reader sees every event exactly once and in order, and every create is
stored exactly once.

How fast training stays under the load, and the longest gap between its steps
(the old 3 s stall bound), are wall-clock measurements, not correctness:
bench/load_isolation.py measures and judges them (docs/benchmarks.md, "Load
isolation"); a busy 2-core test host cannot.
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
from .load_client import (CLIENTS, CREATES_PER_CLIENT, IDLE, READERS, SLOW, SLOW_READERS, STORM_SIZE,
                          loss_points)

CLIENT_NICE = 10
MAX_RSS_GROWTH = 150 << 20


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))


@pytest.mark.parametrize("pinned", [
    pytest.param(False, id="shared-cpus"),
    pytest.param(True, id="daemon-on-its-own-cpu", marks=pytest.mark.skipif(
        len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")),
])
def test_load_keeps_the_daemon_correct_and_bounded(make_daemon, tiny_llama_dir, sft_jsonl, tmp_path,
                                                   pinned: bool) -> None:
    # The load client's 200 watchers share 12 channels and send no modx-client-id, so they count as
    # one client for max_watchers_per_client (default 32, limits.py): raise the cap for them.
    config = tmp_path / "modxd.toml"
    config.write_text(f"max_watchers_per_client = {READERS + SLOW_READERS + IDLE + 2 * STORM_SIZE + 10}\n")
    # Pinned: the daemon and the load generator share CPU 0, the worker has CPU 1 to itself (one torch
    # thread), as on a host where the daemon is given cores of its own: its thread pools are then sized
    # for one CPU, which the load must not deadlock either.
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
        rss_before = peak[0] = _rss(d.proc.pid)
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

    window = loss_points(d, task_id, *results["load_window"])  # how many: for people, speed is the bench's
    print(f"load ({'pinned' if pinned else 'shared'}): {len(window)} training steps logged in the load window, "
          f"daemon RSS +{(peak[0] - rss_before) >> 20} MiB")
    assert peak[0] - rss_before < MAX_RSS_GROWTH, f"daemon RSS grew {(peak[0] - rss_before) >> 20} MiB"

    final = wait_for_state(d, task_id, {"stopped", "failed", "completed"}, timeout=120)
    assert state_name(final.state) == "stopped"
    steps = [step for step, _ in loss_points(d, task_id)]
    gaps = [b - a for a, b in zip(steps, steps[1:])]
    assert all(0 < gap <= SLOW["logging_steps"] for gap in gaps), f"a logged step is missing or repeated: {steps}"
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
