"""Distributed tasks through a real daemon: devices checked at create, stop and resume across two
ranks with one quota unit per checkpoint, a killed rank failing the task cleanly, and a task
spanning two "hosts" (two launchers on this machine, the second joined with torchrun)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from modx.v1 import system_pb2
from modx.v1 import training_pb2 as T

from ..daemon.helpers import create_request, rpc_error, sft_params, state_name, wait_event, wait_for_state
from .conftest import LOSS_RTOL, Reference

SMALL = dict(per_device_train_batch_size=4, gradient_accumulation_steps=1, logging_steps=1, max_seq_length=128)


def rank_pids(state_dir: Path, rank: int | None = None) -> list[int]:
    """Rank processes (python -m modxd.worker.rank) of the daemon on `state_dir`."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read().split(b"\0")
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if (f"MODX_STATE_DIR={state_dir}".encode() in env and b"modxd.worker.rank" in cmd
                and (rank is None or f"RANK={rank}".encode() in env)):
            pids.append(int(entry))
    return pids


def _wait_pids(state_dir: Path, rank: int | None, count: int, timeout: float = 60.0) -> list[int]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        pids = rank_pids(state_dir, rank)
        if len(pids) == count:
            return pids
        time.sleep(0.1)
    raise AssertionError(f"expected {count} rank process(es), found {rank_pids(state_dir, rank)}")


def test_devices_are_checked_against_the_host_at_create(daemon, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    cases = [({"devices": "cuda:0"}, grpc.StatusCode.FAILED_PRECONDITION, "does not train on"),
             ({"devices": str((os.cpu_count() or 1) + 1)}, grpc.StatusCode.FAILED_PRECONDITION, "CPU core"),
             ({"devices": "two"}, grpc.StatusCode.INVALID_ARGUMENT, "parameter devices must be auto"),
             ({"nnodes": "2"}, grpc.StatusCode.INVALID_ARGUMENT, "needs rdzv_endpoint")]
    for extra, code, fragment in cases:
        req = create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "out", **extra))
        error = rpc_error(lambda: daemon.training.CreateTask(req))
        assert error.code() == code and fragment in error.details(), (extra, error.details())
    # Two ranks: the estimate counts the global batch (32 examples / (4 x 2 ranks) = 4 steps).
    req = create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "out", devices="2", num_train_epochs=1,
                                      save_steps=2, **SMALL))
    req.validate_only = True
    est = daemon.training.CreateTask(req).task.quota_estimate
    assert (est.total_steps, est.checkpoints) == (4, 2)


def test_stop_resume_and_a_killed_rank(make_daemon, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    d = make_daemon(quota=100)
    req = create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "out", devices="2", num_train_epochs=50,
                                      save_steps=1000, **SMALL))  # gradient checkpointing on (the default)
    task_id = d.training.CreateTask(req).task.id
    d.training.StartTask(T.StartTaskRequest(task_id=task_id))
    task = wait_for_state(d, task_id, {"running"})
    assert task.device == "cpu x2" and "2 ranks, ddp" in task.state_reason
    (slot,) = d.system.GetStatus(system_pb2.GetStatusRequest()).devices
    assert slot.task_id == task_id  # the CPU slot is held by the task's two ranks
    wait_event(d, task_id, T.EVENT_KIND_METRICS, lambda e: e.metrics.step >= 2)

    # Stop: every rank stops at the same step, rank 0 saves once, one unit is debited.
    d.training.StopTask(T.StopTaskRequest(task_id=task_id))
    task = wait_for_state(d, task_id, {"stopped", "failed"}, timeout=120)
    assert state_name(task.state) == "stopped", (task.state_reason, list(task.failure_log_tail))
    (first,) = d.training.ListCheckpoints(T.ListCheckpointsRequest(task_id=task_id)).checkpoints
    assert d.system.GetQuota(system_pb2.GetQuotaRequest()).balance == 99
    assert {"rng_state_0.pth", "rng_state_1.pth"} <= set(os.listdir(first.path))
    _wait_pids(d.state_dir, None, 0, timeout=30)

    # Resume on both ranks, then kill rank 1: the launcher stops rank 0 and the task fails, naming it.
    d.training.ResumeTask(T.ResumeTaskRequest(task_id=task_id))
    wait_event(d, task_id, T.EVENT_KIND_METRICS, lambda e: e.metrics.step > first.step, timeout=180)
    (victim,) = _wait_pids(d.state_dir, 1, 1)
    os.kill(victim, signal.SIGKILL)
    task = wait_for_state(d, task_id, {"failed", "stopped", "completed"}, timeout=60)
    assert state_name(task.state) == "failed", task.state_reason
    assert "rank 1 of 2" in task.state_reason and "SIGKILL" in task.state_reason, task.state_reason
    _wait_pids(d.state_dir, None, 0, timeout=30)  # no rank is left behind
    (slot,) = d.system.GetStatus(system_pb2.GetStatusRequest()).devices
    assert slot.task_id == ""
    checkpoints = d.training.ListCheckpoints(T.ListCheckpointsRequest(task_id=task_id)).checkpoints
    assert d.system.GetQuota(system_pb2.GetQuotaRequest()).balance == 100 - len(checkpoints)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_task_spans_two_hosts_and_resumes_a_one_process_checkpoint(daemon, reference: Reference,
                                                                      tmp_path) -> None:
    """Node 0 is the daemon's worker; node 1 joins with torchrun (through `launch join`). FSDP shards
    the model over both; the run continues the one-process reference from its step-2 checkpoint."""
    out = tmp_path / "out"
    port = _free_port()
    req = create_request(**sft_params(
        reference.model, reference.data, out, devices="1", nnodes="2", rdzv_endpoint=f"127.0.0.1:{port}",
        distributed_strategy="fsdp", num_train_epochs=1, save_steps=2, learning_rate=1e-2, lora_r=8,
        gradient_checkpointing="false", fp16="false", resume_from_checkpoint=reference.checkpoints[2], **SMALL))
    task_id = daemon.training.CreateTask(req).task.id
    daemon.training.StartTask(T.StartTaskRequest(task_id=task_id))
    join = subprocess.Popen([sys.executable, "-m", "modxd.worker.launch", "join", "--output-dir", str(out),
                             "--node-rank", "1", "--wait", "120"], env={**os.environ, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        task = wait_for_state(daemon, task_id, {"completed", "failed", "stopped"}, timeout=240)
        assert state_name(task.state) == "completed", (task.state_reason, list(task.failure_log_tail))
        assert join.wait(60) == 0
    finally:
        if join.poll() is None:
            join.kill()
        joined = join.communicate()[0].decode(errors="replace")
    assert "2 ranks, fsdp" in " ".join(e.state_change.reason for e in _events(daemon, task_id)), joined[-2000:]
    points = daemon.training.ListMetrics(T.ListMetricsRequest(task_id=task_id)).points
    losses = {p.step: p.loss for p in points if p.HasField("loss")}
    for step in (3, 4):
        assert losses[step] == pytest.approx(reference.losses[step], rel=LOSS_RTOL), (step, losses)
    steps = [c.step for c in daemon.training.ListCheckpoints(T.ListCheckpointsRequest(task_id=task_id)).checkpoints]
    assert steps == [4]
    assert not (out / ".modx-distributed").exists()


def _events(daemon, task_id: str) -> list:
    return [r.event for r in daemon.training.WatchTask(
        T.WatchTaskRequest(task_id=task_id, kinds=[T.EVENT_KIND_STATE_CHANGE], history_only=True), timeout=30)]


def test_a_stop_while_waiting_for_the_other_hosts_ends_the_task(daemon, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    req = create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "out", devices="1", nnodes="2",
                                      rdzv_endpoint=f"127.0.0.1:{_free_port()}", **SMALL))
    task_id = daemon.training.CreateTask(req).task.id
    daemon.training.StartTask(T.StartTaskRequest(task_id=task_id))
    wait_event(daemon, task_id, T.EVENT_KIND_LOG, lambda e: "waiting for the other hosts" in e.log.message)
    daemon.training.StopTask(T.StopTaskRequest(task_id=task_id))
    task = wait_for_state(daemon, task_id, {"stopped", "failed", "completed"}, timeout=60)
    assert state_name(task.state) == "stopped" and task.state_reason == "user", task.state_reason
    assert not daemon.training.ListCheckpoints(T.ListCheckpointsRequest(task_id=task_id)).checkpoints
