"""Case 2: a training worker dies — SIGKILL, a Python exception, out of memory.

One daemon, one device, four queued tasks. Each victim must be failed within
seconds with a reason that says what happened, its process must be gone and
its device slot freed, and the next queued task must start; the last one runs
to completion on the freed device.

Out of memory is real, not simulated by a flag: the test lowers the running
worker's address-space limit (RLIMIT_AS via prlimit(2)) to what it already
uses, so its next allocation fails inside torch exactly as it does when a host
runs out of memory. (The kernel OOM killer's SIGKILL is the first victim's
case.)
"""
from __future__ import annotations

import os
import resource
import shutil
import signal
import time

from modx.v1 import system_pb2
from modx.v1 import training_pb2 as T

from ..daemon.helpers import create_request, sft_params, state_name, wait_event, wait_for_state, worker_pids

SLOW = dict(num_train_epochs=50, per_device_train_batch_size=1, gradient_accumulation_steps=1, logging_steps=1,
            max_seq_length=64, save_steps=1000)
QUICK = dict(num_train_epochs=1, per_device_train_batch_size=8, gradient_accumulation_steps=1, logging_steps=1,
             max_seq_length=64, save_strategy="no")
FAILED_WITHIN_S = 120.0  # from the fault to the stored `failed`: generous, only a hang reaches it


def _slot(d) -> str:
    """The task holding the only device slot ('' when free)."""
    (slot,) = d.system.GetStatus(system_pb2.GetStatusRequest()).devices
    return slot.task_id


def _worker_of(d, timeout: float = 60.0) -> int:
    deadline = time.time() + timeout
    while time.time() < deadline:
        pids = worker_pids(d.state_dir)
        if len(pids) == 1:
            return pids[0]
        time.sleep(0.1)
    raise AssertionError(f"expected one worker, found {worker_pids(d.state_dir)}")


def _gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(") ", 1)[1].startswith("Z"):
                    return True  # a zombie holds nothing
        except (FileNotFoundError, ProcessLookupError):
            return True
        time.sleep(0.1)
    return False


def _failed_soon(d, task_id: str) -> T.Task:
    task = wait_for_state(d, task_id, {"failed", "completed", "stopped"}, timeout=FAILED_WITHIN_S)
    assert state_name(task.state) == "failed", (task.state_reason, list(task.failure_log_tail))
    assert task.error == task.state_reason and task.failure_log_tail
    return task


def test_dead_workers_fail_their_task_and_the_queue_moves_on(make_daemon, tiny_llama_dir, sft_jsonl,
                                                             tmp_path) -> None:
    d = make_daemon()
    tr = d.training
    broken_model = tmp_path / "model"
    shutil.copytree(tiny_llama_dir, broken_model)
    killed = tr.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "a", **SLOW))).task.id
    raising = tr.CreateTask(create_request(**sft_params(broken_model, sft_jsonl, tmp_path / "b", **SLOW))).task.id
    starved = tr.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "c", **SLOW))).task.id
    last = tr.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "d", **QUICK))).task.id
    for task_id in (killed, raising, starved, last):
        tr.StartTask(T.StartTaskRequest(task_id=task_id))
    # The weights break while the task waits in the queue (create and start checked them):
    # loading them raises in the worker.
    (broken_model / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\": 1}        ")

    # 1. SIGKILL (what the kernel OOM killer or an operator does)
    wait_event(d, killed, T.EVENT_KIND_METRICS)
    pid = _worker_of(d)
    os.kill(pid, signal.SIGKILL)
    task = _failed_soon(d, killed)
    assert task.state_reason == "worker killed by signal SIGKILL (out of memory, or killed by an operator)"
    assert _gone(pid) and _slot(d) != killed

    # 2. a Python exception in the worker (it starts on the freed slot by itself)
    task = wait_for_state(d, raising, {"failed", "completed", "stopped"}, timeout=FAILED_WITHIN_S)
    assert state_name(task.state) == "failed", task.state_reason
    assert task.state_reason.startswith(f"ModelDirProblem: parameter model_dir: {broken_model}/model.safetensors "
                                        "is not a valid safetensors file"), task.state_reason
    tail = list(task.failure_log_tail)  # the last log lines, then the end of the traceback
    assert "ModelDirProblem: parameter model_dir" in tail[-1] and any(line.strip().startswith("File ") for line in tail), tail
    assert _slot(d) != raising

    # 3. out of memory: the worker's next allocation fails
    wait_event(d, starved, T.EVENT_KIND_METRICS)
    pid = _worker_of(d)
    with open(f"/proc/{pid}/status") as f:
        vm_size = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    resource.prlimit(pid, resource.RLIMIT_AS, (vm_size, vm_size))
    task = _failed_soon(d, starved)
    assert task.state_reason.startswith("out of memory: "), task.state_reason
    assert "allocate" in task.state_reason.lower() or "MemoryError" in task.state_reason, task.state_reason
    assert _gone(pid) and _slot(d) != starved

    # 4. the freed device runs the next task to the end
    done = wait_for_state(d, last, {"completed", "failed", "stopped"}, timeout=180)
    assert state_name(done.state) == "completed", (done.state_reason, list(done.failure_log_tail))
    assert _slot(d) == "" and not worker_pids(d.state_dir)
    # no failed run recorded a checkpoint or spent quota
    for task_id in (killed, raising, starved):
        assert not tr.ListCheckpoints(T.ListCheckpointsRequest(task_id=task_id)).checkpoints
    quota = d.system.GetQuota(system_pb2.GetQuotaRequest(ledger_limit=100))
    assert {e.task_id for e in quota.ledger if e.kind == "checkpoint"} == {last}
