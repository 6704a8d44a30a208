"""CPU pinning: the daemon on `daemon_cpus`, every worker it starts on `worker_cpus`.

On a host where CPUs are scarce this is how the daemon's own work (gRPC fan-out, SQLite, clients
creating and listing tasks) is kept off the cores that train (docs/reliability.md, "Load").
"""
from __future__ import annotations

import os
import subprocess
import sys

import psutil
import pytest
from modx.v1 import training_pb2 as T

from modxd.config import format_cpu_list, load_config, parse_cpu_list
from modxd.errors import InvalidArgument

from tests.support.daemon import REPO

from .helpers import create_request, sft_params, wait_event

two_cpus = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")


@pytest.mark.parametrize("value, cpus", [("0", [0]), ("0-1", [0, 1]), (" 1, 0 ", [0, 1]), ([1, 0], [0, 1]),
                                         (0, [0]), ("", [])])
def test_cpu_lists_parse(value, cpus) -> None:
    allowed = sorted(os.sched_getaffinity(0))
    if max(cpus, default=0) > allowed[-1]:
        pytest.skip("needs two CPUs")
    assert parse_cpu_list("worker_cpus", value) == cpus


@pytest.mark.parametrize("value, words", [
    ("4096", "CPU 4096 is not available to modxd (it may use"),
    ("one", "'one' is not a CPU number"),
    ("1-0", "'1-0' is not a CPU range"),
    ([0, "1"], "worker_cpus must be a list of CPU numbers"),
    (1.5, "worker_cpus must be a string like"),
])
def test_bad_cpu_lists_name_the_key_and_the_problem(value, words) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_cpu_list("worker_cpus", value)
    assert words in str(err.value)


def test_cpu_lists_come_from_the_environment_and_print_as_linux_does() -> None:
    cfg = load_config(env={"MODX_WORKER_CPUS": "0", "MODX_DAEMON_CPUS": "0"})
    assert cfg.worker_cpus == [0] and cfg.daemon_cpus == [0]
    assert format_cpu_list([0, 1, 2, 5, 7, 8]) == "0-2,5,7-8"


ALL = sorted(os.sched_getaffinity(0))


@two_cpus
@pytest.mark.parametrize("env, daemon_cpus, worker_cpus", [
    ({"MODX_DAEMON_CPUS": "0", "MODX_WORKER_CPUS": "1"}, [0], [1]),
    ({"MODX_DAEMON_CPUS": "1"}, [1], ALL),  # workers never inherit the daemon's narrower mask
], ids=["both", "daemon-only"])
def test_daemon_and_workers_run_on_their_own_cpus(make_daemon, tiny_llama_dir, sft_jsonl, tmp_path,
                                                  env, daemon_cpus, worker_cpus) -> None:
    d = make_daemon(**env)
    daemon = psutil.Process(d.proc.pid)
    threads = [t.id for t in daemon.threads()]
    assert threads and all(sorted(os.sched_getaffinity(tid)) == daemon_cpus for tid in threads), \
        "a daemon thread runs elsewhere"
    task_id = d.training.CreateTask(create_request(**sft_params(
        tiny_llama_dir, sft_jsonl, tmp_path / "out", num_train_epochs=50, save_steps=100_000))).task.id
    d.training.StartTask(T.StartTaskRequest(task_id=task_id))
    wait_event(d, task_id, T.EVENT_KIND_METRICS, lambda e: e.metrics.step >= 1)
    # multiprocessing's resource tracker is the daemon's helper, not a worker: it stays with the daemon
    workers = [p for p in daemon.children(recursive=True) if "resource_tracker" not in " ".join(p.cmdline())]
    assert workers, "no worker process"
    for worker in workers:
        assert worker.cpu_affinity() == worker_cpus, f"worker {worker.pid} may run on {worker.cpu_affinity()}"
        assert all(sorted(os.sched_getaffinity(t.id)) == worker_cpus for t in worker.threads())
    d.training.StopTask(T.StopTaskRequest(task_id=task_id))
    logs = [r.event.log.message for r in d.training.WatchTask(T.WatchTaskRequest(
        task_id=task_id, history_only=True, kinds=[T.EVENT_KIND_LOG]))]
    assert f"worker pinned to CPU {format_cpu_list(worker_cpus)} (worker_cpus)" in logs


def test_a_pinned_worker_starts_as_many_torch_threads_as_it_has_cpus() -> None:
    script = "from modxd.worker.runtime import pin_to_cpus; pin_to_cpus([0]); import torch; print(torch.get_num_threads())"
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=REPO)
    assert out.stdout.strip() == "1", out.stderr[-2000:]


def test_cpu_processes_are_counted_against_the_workers_cpus() -> None:
    from modxd import placement
    from modxd.worker.spawn import set_worker_cpus, worker_cpu_count

    two = placement.parse_devices("2")
    set_worker_cpus([0])
    try:
        assert "asks for 2 processes on the CPU" in placement.impossible(two, ["cpu"], worker_cpu_count())
    finally:
        set_worker_cpus([])
    if len(os.sched_getaffinity(0)) >= 2:
        assert placement.impossible(two, ["cpu"], worker_cpu_count()) == ""
