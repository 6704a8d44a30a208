"""Case 3: SIGTERM to the daemon while it trains (what systemd does on stop/restart).

Running tasks finish their step, save a final checkpoint and end as stopped
(reason daemon_shutdown, resumable); every watcher receives that terminal
event before its stream ends; pending tasks stay pending and run after the
next start; the process exits within stop_timeout_seconds. A worker that does
not stop in time (here: frozen with SIGSTOP) is killed when the timeout runs
out and its task fails with a reason that says so.
"""
from __future__ import annotations

import os
import signal
import time

from modx.v1 import common_pb2 as C
from modx.v1 import training_pb2 as T

from ..daemon.helpers import (Watcher, check_checkpoint_usable, create_request, sft_params, state_name,
                              wait_event, wait_for_state, worker_pids)

STOP_TIMEOUT = 5.0
SLOW = dict(num_train_epochs=50, per_device_train_batch_size=1, gradient_accumulation_steps=1, logging_steps=1,
            max_seq_length=64, save_steps=1000)


HANG = 120.0  # far beyond any busy machine: only a daemon that never exits reaches it


def _terminate(d) -> tuple[int, float]:
    t0 = time.time()
    d.proc.send_signal(signal.SIGTERM)
    rc = d.proc.wait(STOP_TIMEOUT + HANG)
    return rc, time.time() - t0


def _assert_complete_stream(w: Watcher, final_state: int) -> None:
    assert w.ended and w.error is None, w.error
    assert w.seqs == list(range(1, len(w.seqs) + 1)), "lost or duplicated events"
    last = w.events[-1]
    assert last.HasField("state_change") and last.state_change.to_state == final_state


def test_sigterm_stops_with_a_final_checkpoint_and_kills_a_stuck_worker(make_daemon, tiny_llama_dir, sft_jsonl,
                                                                         tmp_path) -> None:
    config = tmp_path / "modxd.toml"
    config.write_text(f"stop_timeout_seconds = {STOP_TIMEOUT}\n")
    d = make_daemon(MODX_CONFIG=str(config))
    tr = d.training
    running = tr.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "a", **SLOW))).task.id
    waiting = tr.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "b", **SLOW))).task.id
    tr.StartTask(T.StartTaskRequest(task_id=running))
    tr.StartTask(T.StartTaskRequest(task_id=waiting))
    wait_event(d, running, T.EVENT_KIND_METRICS, lambda e: e.metrics.step >= 2)
    watchers = [Watcher(d.address, running) for _ in range(3)]
    time.sleep(0.5)  # they are following live

    rc, elapsed = _terminate(d)
    # Within the stop timeout: the worker stopped by itself (the reason would say it was killed
    # otherwise), whatever the wall clock of a busy machine shows.
    assert rc == 0, f"exit {rc} after {elapsed:.1f}s"
    for w in watchers:
        _assert_complete_stream(w.join(), C.TASK_STATE_STOPPED)
        assert w.events[-1].state_change.reason == "daemon_shutdown"
    assert not worker_pids(d.state_dir)

    # next start: the stopped task has its final checkpoint, the pending one runs
    d2 = make_daemon(state_dir=d.state_dir, MODX_CONFIG=str(config))
    task = d2.training.GetTask(T.GetTaskRequest(task_id=running)).task
    assert state_name(task.state) == "stopped" and task.state_reason == "daemon_shutdown"
    (final,) = d2.training.ListCheckpoints(T.ListCheckpointsRequest(task_id=running)).checkpoints
    assert final.step == task.current_step >= 2
    check_checkpoint_usable(final.path, final.step)

    # a worker that does not react: frozen, then killed when the stop timeout runs out
    wait_event(d2, waiting, T.EVENT_KIND_METRICS)
    (pid,) = worker_pids(d2.state_dir)
    os.kill(pid, signal.SIGSTOP)
    watcher = Watcher(d2.address, waiting)
    time.sleep(0.5)
    rc, elapsed = _terminate(d2)
    assert rc == 0 and elapsed >= STOP_TIMEOUT, f"exit {rc} after {elapsed:.1f}s"  # it waited the whole timeout
    _assert_complete_stream(watcher.join(), C.TASK_STATE_FAILED)
    reason = watcher.events[-1].state_change.reason
    assert reason == (f"daemon_shutdown: the worker did not stop within {STOP_TIMEOUT:g}s and was killed; "
                      "resume continues from the last checkpoint"), reason
    assert not worker_pids(d2.state_dir)

    # both are resumable: the stopped one from its final checkpoint
    d3 = make_daemon(state_dir=d.state_dir)
    assert state_name(d3.training.GetTask(T.GetTaskRequest(task_id=waiting)).task.state) == "failed"
    resumed = d3.training.ResumeTask(T.ResumeTaskRequest(task_id=running))
    assert resumed.checkpoint.id == final.id
    wait_for_state(d3, running, {"running"})
