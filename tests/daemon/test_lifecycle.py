"""The task lifecycle through a real daemon and real (tiny) training runs."""
from __future__ import annotations

import grpc
import pytest
from modx.v1 import system_pb2
from modx.v1 import training_pb2 as T

from .helpers import create_request, sft_params, state_name, wait_for_state

FAST = dict(num_train_epochs=1, save_steps=2, logging_steps=1, max_seq_length=64)
# SLOW runs long enough to be stopped mid-way (192 steps) yet finishes quickly once resumed.
SLOW = dict(num_train_epochs=6, per_device_train_batch_size=1, gradient_accumulation_steps=1, save_steps=1000,
            logging_steps=1, max_seq_length=64)


def _create(daemon, model, data, out, **params) -> str:
    return daemon.training.CreateTask(create_request(**sft_params(model, data, out, **params))).task.id


def _fails(call, code: grpc.StatusCode, fragment: str) -> None:
    with pytest.raises(grpc.RpcError) as info:
        call()
    assert info.value.code() == code, info.value.details()
    assert fragment in info.value.details(), info.value.details()


def test_run_to_completion_then_illegal_transitions(daemon, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    task_id = _create(daemon, tiny_llama_dir, sft_jsonl, tmp_path / "o", **FAST)
    tr = daemon.training
    _fails(lambda: tr.StopTask(T.StopTaskRequest(task_id=task_id)), grpc.StatusCode.FAILED_PRECONDITION,
           "it is created")
    _fails(lambda: tr.ResumeTask(T.ResumeTaskRequest(task_id=task_id)), grpc.StatusCode.FAILED_PRECONDITION,
           "only a stopped or failed task can be resumed")
    quota_before = daemon.system.GetQuota(system_pb2.GetQuotaRequest()).balance
    started = tr.StartTask(T.StartTaskRequest(task_id=task_id)).task
    assert state_name(started.state) in {"pending", "running"}
    _fails(lambda: tr.StartTask(T.StartTaskRequest(task_id=task_id)), grpc.StatusCode.FAILED_PRECONDITION,
           "cannot start")
    task = wait_for_state(daemon, task_id, {"completed", "failed"})
    assert state_name(task.state) == "completed", (task.state_reason, list(task.failure_log_tail))
    assert task.current_step == task.total_steps == task.quota_estimate.total_steps
    ckpts = tr.ListCheckpoints(T.ListCheckpointsRequest(task_id=task_id)).checkpoints
    assert len(ckpts) == task.quota_estimate.checkpoints == task.checkpoints_saved
    quota = daemon.system.GetQuota(system_pb2.GetQuotaRequest())
    assert quota.balance == quota_before - len(ckpts)
    assert {e.checkpoint_id for e in quota.ledger if e.task_id == task_id} == {c.id for c in ckpts}
    for call, fragment in [
        (lambda: tr.StartTask(T.StartTaskRequest(task_id=task_id)), "it is completed"),
        (lambda: tr.StopTask(T.StopTaskRequest(task_id=task_id)), "it is completed"),
        (lambda: tr.ResumeTask(T.ResumeTaskRequest(task_id=task_id)), "it is completed"),
    ]:
        _fails(call, grpc.StatusCode.FAILED_PRECONDITION, fragment)
    points = tr.ListMetrics(T.ListMetricsRequest(task_id=task_id)).points
    assert [p.step for p in points if p.HasField("loss")] == list(range(1, task.total_steps + 1))
    tr.DeleteTask(T.DeleteTaskRequest(task_id=task_id))
    _fails(lambda: tr.GetTask(T.GetTaskRequest(task_id=task_id)), grpc.StatusCode.NOT_FOUND, task_id)


def test_stop_saves_a_checkpoint_and_resume_continues(daemon, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    tr = daemon.training
    task_id = _create(daemon, tiny_llama_dir, sft_jsonl, tmp_path / "o", **SLOW)
    tr.StartTask(T.StartTaskRequest(task_id=task_id))
    wait_for_state(daemon, task_id, {"running"})
    _fails(lambda: tr.DeleteTask(T.DeleteTaskRequest(task_id=task_id)), grpc.StatusCode.FAILED_PRECONDITION,
           "stop it before deleting")
    # Let it take a few steps, then stop.
    for response in tr.WatchTask(T.WatchTaskRequest(task_id=task_id)):
        if response.event.HasField("metrics") and response.event.metrics.step >= 3:
            break
    stopping = tr.StopTask(T.StopTaskRequest(task_id=task_id)).task
    assert state_name(stopping.state) in {"stopping", "stopped"}
    stopped = wait_for_state(daemon, task_id, {"stopped", "failed", "completed"})
    assert state_name(stopped.state) == "stopped" and stopped.state_reason == "user"
    ckpts = tr.ListCheckpoints(T.ListCheckpointsRequest(task_id=task_id)).checkpoints
    assert len(ckpts) == 1 and ckpts[0].step == stopped.current_step >= 3
    resumed = tr.ResumeTask(T.ResumeTaskRequest(task_id=task_id, checkpoint=str(ckpts[0].step)))
    assert resumed.checkpoint.id == ckpts[0].id and resumed.task.resume_count == 1
    done = wait_for_state(daemon, task_id, {"stopped", "failed", "completed"}, timeout=600)
    assert state_name(done.state) == "completed", done.state_reason
    steps = [p.step for p in tr.ListMetrics(T.ListMetricsRequest(task_id=task_id)).points if p.HasField("loss")]
    assert steps == sorted(steps) and steps[-1] == done.total_steps
    assert len(steps) == len(set(steps)), "resumed run repeated steps"
    reasons = [r.event.state_change.reason for r in
               tr.WatchTask(T.WatchTaskRequest(task_id=task_id, kinds=[T.EVENT_KIND_STATE_CHANGE]))]
    assert any(r.startswith(f"resumed from checkpoint {ckpts[0].id}") for r in reasons), reasons


def test_stop_a_pending_task_and_queue_order(daemon, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    tr = daemon.training
    first = _create(daemon, tiny_llama_dir, sft_jsonl, tmp_path / "a", **SLOW)
    second = _create(daemon, tiny_llama_dir, sft_jsonl, tmp_path / "b", **FAST)
    third = _create(daemon, tiny_llama_dir, sft_jsonl, tmp_path / "c", **FAST)
    for task_id in (first, second, third):
        tr.StartTask(T.StartTaskRequest(task_id=task_id))
    wait_for_state(daemon, first, {"running"})
    queued = tr.GetTask(T.GetTaskRequest(task_id=second)).task
    assert state_name(queued.state) == "pending" and queued.queue_position == 1
    assert tr.GetTask(T.GetTaskRequest(task_id=third)).task.queue_position == 2
    assert state_name(tr.StopTask(T.StopTaskRequest(task_id=second)).task.state) == "stopped"
    tr.StopTask(T.StopTaskRequest(task_id=first))
    wait_for_state(daemon, first, {"stopped"})
    done = wait_for_state(daemon, third, {"completed", "failed"})
    assert state_name(done.state) == "completed"
    t1 = tr.GetTask(T.GetTaskRequest(task_id=first)).task
    assert done.start_time.ToNanoseconds() >= t1.end_time.ToNanoseconds() - 2_000_000_000
