"""A daemon killed mid-training: on restart the task is failed (daemon_restarted), nothing else is lost."""
from __future__ import annotations

import os
import time

from modx.v1 import training_pb2 as T

from .helpers import create_request, sft_params, state_name, wait_for_state, worker_pids

SLOW = dict(num_train_epochs=30, per_device_train_batch_size=1, gradient_accumulation_steps=1, save_steps=2,
            logging_steps=1, max_seq_length=64)


def test_restart_fails_running_tasks_and_requeues_pending(make_daemon, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    d = make_daemon()
    tr = d.training
    running = tr.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "a", **SLOW))).task.id
    pending = tr.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "b",
                                                        num_train_epochs=1, logging_steps=1))).task.id
    tr.StartTask(T.StartTaskRequest(task_id=running))
    tr.StartTask(T.StartTaskRequest(task_id=pending))
    for response in tr.WatchTask(T.WatchTaskRequest(task_id=running, kinds=[T.EVENT_KIND_CHECKPOINT_SAVED])):
        break  # one checkpoint is durably recorded
    saved = tr.ListCheckpoints(T.ListCheckpointsRequest(task_id=running)).checkpoints
    assert saved and worker_pids(d.state_dir)
    d.kill()
    deadline = time.time() + 20
    while worker_pids(d.state_dir) and time.time() < deadline:
        time.sleep(0.2)
    assert not worker_pids(d.state_dir), "the worker outlived its daemon"

    again = make_daemon(state_dir=d.state_dir)
    task = again.training.GetTask(T.GetTaskRequest(task_id=running)).task
    assert state_name(task.state) == "failed" and task.state_reason == "daemon_restarted"
    after = again.training.ListCheckpoints(T.ListCheckpointsRequest(task_id=running)).checkpoints
    assert [c.id for c in after][: len(saved)] == [c.id for c in saved]
    assert all(os.path.isdir(c.path) for c in after)
    done = wait_for_state(again, pending, {"completed", "failed"})
    assert state_name(done.state) == "completed", done.state_reason
    resumed = again.training.ResumeTask(T.ResumeTaskRequest(task_id=running))
    assert resumed.checkpoint.id == after[-1].id
    again.training.StopTask(T.StopTaskRequest(task_id=running))
    wait_for_state(again, running, {"stopped", "completed"})
