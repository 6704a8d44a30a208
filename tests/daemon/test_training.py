"""Training through the daemon: both task types learn, checkpoints and quota, fallbacks, resume.

Workers that die (SIGKILL, an exception, out of memory) are tests/faults/test_worker_faults.py.
"""
from __future__ import annotations

import os

from modx.v1 import system_pb2
from modx.v1 import training_pb2 as T

from .helpers import create_request, sft_params, state_name, wait_for_state

QUICK = dict(num_train_epochs=1, logging_steps=1, max_seq_length=64)


def _run(d, req) -> tuple[str, T.Task]:
    task_id = d.training.CreateTask(req).task.id
    d.training.StartTask(T.StartTaskRequest(task_id=task_id))
    return task_id, wait_for_state(d, task_id, {"completed", "failed", "stopped"})


def _losses(d, task_id) -> list[float]:
    return [p.loss for p in d.training.ListMetrics(T.ListMetricsRequest(task_id=task_id)).points if p.HasField("loss")]


def test_pretraining_full_fine_tuning_learns(daemon, tiny_qwen2_dir, pretrain_txt, tmp_path) -> None:
    req = create_request("pretrain", train_file=pretrain_txt, model_dir=tiny_qwen2_dir, output_dir=tmp_path / "o",
                         max_seq_length=32, num_train_epochs=3, learning_rate=3e-3, per_device_train_batch_size=4,
                         gradient_accumulation_steps=1, logging_steps=1, save_strategy="epoch")
    task_id, task = _run(daemon, req)
    assert state_name(task.state) == "completed", (task.state_reason, list(task.failure_log_tail))
    assert task.params["use_lora"].bool_value is False
    losses = _losses(daemon, task_id)
    assert losses[-1] < losses[0] * 0.8, losses
    ckpts = daemon.training.ListCheckpoints(T.ListCheckpointsRequest(task_id=task_id)).checkpoints
    assert len(ckpts) == 3 == task.quota_estimate.checkpoints
    assert os.path.isfile(os.path.join(ckpts[-1].path, "model.safetensors"))
    assert any(name.startswith("events.out.tfevents") for _, _, files in os.walk(tmp_path / "o" / "runs")
               for name in files), "no TensorBoard event files"


def test_sft_lora_learns_and_retention_keeps_records(daemon, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    req = create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "o", num_train_epochs=3, save_steps=2,
                                      save_total_limit=2, learning_rate=2e-2, logging_steps=1, max_seq_length=64))
    task_id, task = _run(daemon, req)
    assert state_name(task.state) == "completed", task.state_reason
    losses = _losses(daemon, task_id)
    assert sum(losses[-3:]) / 3 < 0.9 * sum(losses[:3]) / 3, losses
    every = daemon.training.ListCheckpoints(T.ListCheckpointsRequest(task_id=task_id, include_deleted=True)).checkpoints
    kept = daemon.training.ListCheckpoints(T.ListCheckpointsRequest(task_id=task_id)).checkpoints
    assert len(every) == task.quota_estimate.checkpoints == 6 and len(kept) == 2
    assert [c.step for c in kept] == [c.step for c in every][-2:]
    for c in every:
        assert c.deleted == (not os.path.isdir(c.path))
    assert os.path.isfile(os.path.join(kept[-1].path, "adapter_model.safetensors"))
    ledger = daemon.system.GetQuota(system_pb2.GetQuotaRequest(ledger_limit=500)).ledger
    assert sorted(e.checkpoint_id for e in ledger if e.task_id == task_id) == sorted(c.id for c in every)
    warnings = [r.event.warning.code for r in daemon.training.WatchTask(
        T.WatchTaskRequest(task_id=task_id, kinds=[T.EVENT_KIND_WARNING]))]
    assert "fp16_unavailable" not in warnings  # fp16 is only the default: the CPU's fp32 is a logged note


def test_quota_exhausted_stops_the_task(make_daemon, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    d = make_daemon(quota=2)
    req = create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "o", save_steps=1,
                                      per_device_train_batch_size=1, gradient_accumulation_steps=1, **QUICK))
    task_id, task = _run(d, req)
    assert state_name(task.state) == "stopped" and task.state_reason == "quota_exhausted"
    assert len(d.training.ListCheckpoints(T.ListCheckpointsRequest(task_id=task_id)).checkpoints) == 2
    assert d.system.GetQuota(system_pb2.GetQuotaRequest()).balance == 0
    codes = [r.event.warning.code for r in d.training.WatchTask(
        T.WatchTaskRequest(task_id=task_id, kinds=[T.EVENT_KIND_WARNING]))]
    assert "quota_low" in codes and "quota_exhausted" in codes
    other = d.training.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "p"))).task.id
    try:
        d.training.StartTask(T.StartTaskRequest(task_id=other))
        raise AssertionError("start with a zero balance must be refused")
    except Exception as exc:  # grpc.RpcError
        assert "RESOURCE_EXHAUSTED" in str(exc.code()) and "quota" in exc.details()


def test_resumed_run_ends_like_an_uninterrupted_one(daemon, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    params = dict(num_train_epochs=2, per_device_train_batch_size=2, gradient_accumulation_steps=1, save_steps=1000,
                  logging_steps=1, max_seq_length=64, learning_rate=2e-3, seed=7)
    _, whole = _run(daemon, create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "a", **params)))
    tr = daemon.training
    task_id = tr.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "b", **params))).task.id
    tr.StartTask(T.StartTaskRequest(task_id=task_id))
    for response in tr.WatchTask(T.WatchTaskRequest(task_id=task_id, kinds=[T.EVENT_KIND_METRICS])):
        if response.event.metrics.step >= 5:
            break
    tr.StopTask(T.StopTaskRequest(task_id=task_id))
    stopped = wait_for_state(daemon, task_id, {"stopped", "completed"})
    assert state_name(stopped.state) == "stopped" and stopped.current_step < whole.total_steps
    tr.ResumeTask(T.ResumeTaskRequest(task_id=task_id))
    resumed = wait_for_state(daemon, task_id, {"completed", "failed"})
    assert state_name(resumed.state) == "completed"
    assert resumed.last_loss == __import__("pytest").approx(whole.last_loss, rel=1e-3)
