"""Issue 18 item 7: a full state-dir disk never leaves a task (or a job) non-terminal without a worker.

The daemon's state dir lives on a real 16 MiB tmpfs (the `state_disk` fixture; skipped, saying why,
where mounting is not permitted). While a task trains, the test fills that filesystem, so the
daemon's next database write fails with SQLITE_FULL. Expected: the run is stopped, its worker exits
and its device is released while the disk is still full; operations on the task say the disk is
full (RESOURCE_EXHAUSTED) instead of acting on a state that is not stored yet; once space is freed
the writes that waited land in their order, the task ends `failed` with a sentence naming the disk
and the database, the queue moves on, and the failed task can be resumed. The same for an
evaluation job: it ends `failed` with the disk sentence and the next evaluation runs.
"""
from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Callable, Iterator

import grpc
import pytest
from modx.v1 import common_pb2 as C
from modx.v1 import eval_pb2 as E
from modx.v1 import system_pb2
from modx.v1 import training_pb2 as T

from tests.support.daemon import Daemon

from ..daemon.helpers import (TERMINAL, Watcher, create_request, rpc_error, sft_params, state_name, wait_event,
                              wait_for_state, worker_pids)
from .conftest import _mount_tmpfs, fill_disk

SLOW = dict(num_train_epochs=50, per_device_train_batch_size=1, gradient_accumulation_steps=1, logging_steps=1,
            max_seq_length=64, save_steps=1000)
# 8 steps (32 examples, batch 4), checkpoints at 4 and 8: what the evaluations compare.
SHORT = dict(num_train_epochs=1, per_device_train_batch_size=4, gradient_accumulation_steps=1, logging_steps=1,
             max_seq_length=64, save_steps=4)
TIMEOUT = 300.0


@pytest.fixture
def state_disk(tmp_path: Path) -> Iterator[Path]:
    target = tmp_path / "state"
    problem = _mount_tmpfs(target, "16m")
    if problem:
        pytest.skip(problem)
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], capture_output=True)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, f"timed out waiting until {what}"
        time.sleep(0.2)


def slot_holder(d: Daemon) -> str:
    (slot,) = d.system.GetStatus(system_pb2.GetStatusRequest()).devices
    return slot.task_id


def disk_sentence(reason: str, state_dir: Path) -> None:
    assert reason.startswith("disk full: ") and str(state_dir / "modx.db") in reason, reason


def test_a_full_state_disk_fails_the_running_task_and_the_queue_moves_on(state_disk: Path, roots: Path,
                                                                        tiny_llama_dir: Path, sft_jsonl: Path,
                                                                        tmp_path: Path) -> None:
    d = Daemon(state_disk, [roots], quota=100).start()
    try:
        tr = d.training
        doomed = tr.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "a", **SLOW))).task.id
        queued = tr.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "b", **SHORT))).task.id
        tr.StartTask(T.StartTaskRequest(task_id=doomed))
        tr.StartTask(T.StartTaskRequest(task_id=queued))
        wait_event(d, doomed, T.EVENT_KIND_METRICS, lambda e: e.metrics.step >= 2)
        watcher = Watcher(d.address, doomed)
        filler = fill_disk(state_disk)

        # The run stops and its device is free while the disk is still full; nothing starts meanwhile.
        wait_until(lambda: slot_holder(d) == "" and not worker_pids(d.state_dir), "the worker is gone")
        error = rpc_error(lambda: tr.StopTask(T.StopTaskRequest(task_id=doomed)))
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, (error.code(), error.details())
        disk_sentence(error.details(), state_disk)
        error = rpc_error(lambda: tr.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl,
                                                                            tmp_path / "c", **SHORT))))
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "disk full" in error.details(), error.details()
        assert state_name(tr.GetTask(T.GetTaskRequest(task_id=queued)).task.state) == "pending"

        filler.unlink()  # room again: what waited lands, in order, and the task ends
        task = wait_for_state(d, doomed, TERMINAL, timeout=TIMEOUT)
        assert state_name(task.state) == "failed", task.state_reason
        disk_sentence(task.state_reason, state_disk)
        assert "resume" in task.state_reason

        watcher.join(60)
        assert watcher.ended and watcher.error is None, watcher.error
        assert watcher.seqs == list(range(1, len(watcher.seqs) + 1)), "lost or reordered events"
        final = watcher.events[-1]
        assert final.HasField("state_change") and final.state_change.to_state == C.TASK_STATE_FAILED
        history = [r.event for r in tr.WatchTask(T.WatchTaskRequest(task_id=doomed, history_only=True), timeout=60)]
        assert [e.seq for e in history] == list(range(1, len(history) + 1))
        steps = [e.metrics.step for e in history if e.HasField("metrics")]
        assert steps == sorted(steps) and len(steps) == len(set(steps)), steps  # every point, in order
        assert [e.state_change.to_state for e in history if e.HasField("state_change")] == [
            C.TASK_STATE_CREATED, C.TASK_STATE_PENDING, C.TASK_STATE_RUNNING, C.TASK_STATE_FAILED]

        # The queue moved on, and nothing is left non-terminal without a worker.
        after = wait_for_state(d, queued, TERMINAL, timeout=TIMEOUT)
        assert state_name(after.state) == "completed", (after.state_reason, list(after.failure_log_tail))
        for listed in tr.ListTasks(T.ListTasksRequest()).tasks:
            assert state_name(listed.state) in TERMINAL, (listed.id, state_name(listed.state))
        assert slot_holder(d) == ""

        # The failed task is resumable (the defect left it `stopping`, resume refused).
        tr.ResumeTask(T.ResumeTaskRequest(task_id=doomed))
        wait_for_state(d, doomed, {"running"}, timeout=TIMEOUT)
        tr.StopTask(T.StopTaskRequest(task_id=doomed))
        assert state_name(wait_for_state(d, doomed, TERMINAL, timeout=TIMEOUT).state) == "stopped"
        assert d.healthy()
    finally:
        d.kill()


def test_a_full_state_disk_fails_an_evaluation_and_the_next_one_runs(state_disk: Path, roots: Path,
                                                                     tiny_llama_dir: Path, sft_jsonl: Path,
                                                                     tmp_path: Path) -> None:
    d = Daemon(state_disk, [roots], quota=100).start()
    try:
        tr = d.training
        task_id = tr.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "a", **SHORT))).task.id
        tr.StartTask(T.StartTaskRequest(task_id=task_id))
        task = wait_for_state(d, task_id, TERMINAL, timeout=TIMEOUT)
        assert state_name(task.state) == "completed", task.state_reason
        checkpoints = [c.id for c in tr.ListCheckpoints(T.ListCheckpointsRequest(task_id=task_id)).checkpoints]
        assert len(checkpoints) == 2
        request = E.CreateEvaluationRequest(task_id=task_id, checkpoints=checkpoints, samples=32,
                                            generation=E.GenerationSettings(max_new_tokens=64))
        doomed = d.evals.CreateEvaluation(request).evaluation.id
        queued = d.evals.CreateEvaluation(request).evaluation.id
        for response in d.evals.WatchEvaluation(E.WatchEvaluationRequest(evaluation_id=doomed), timeout=TIMEOUT):
            if response.event.HasField("progress"):
                break
        filler = fill_disk(state_disk)
        wait_until(lambda: not worker_pids(d.state_dir), "the evaluation worker is gone")
        filler.unlink()

        def ended(evaluation_id: str) -> E.Evaluation:
            def done() -> bool:
                state = d.evals.GetEvaluation(E.GetEvaluationRequest(evaluation_id=evaluation_id)).evaluation.state
                return state not in (C.JOB_STATE_UNSPECIFIED, C.JOB_STATE_PENDING, C.JOB_STATE_RUNNING)
            wait_until(done, f"evaluation {evaluation_id} ends")
            return d.evals.GetEvaluation(E.GetEvaluationRequest(evaluation_id=evaluation_id)).evaluation

        first = ended(doomed)
        assert first.state == C.JOB_STATE_FAILED, first.state_reason
        disk_sentence(first.state_reason, state_disk)
        events = [r.event for r in d.evals.WatchEvaluation(E.WatchEvaluationRequest(evaluation_id=doomed),
                                                           timeout=60)]
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert events[-1].HasField("state") and events[-1].state == C.JOB_STATE_FAILED
        second = ended(queued)
        assert second.state == C.JOB_STATE_COMPLETED, second.state_reason
        assert d.healthy()
    finally:
        d.kill()
