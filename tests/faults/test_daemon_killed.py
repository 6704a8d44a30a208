"""Case 1: the daemon is SIGKILLed mid-training, then started again.

Decision (docs/reliability.md): workers are not adopted. A worker dies with
its daemon (PR_SET_PDEATHSIG), so nothing keeps a GPU after a crash, and the
new daemon marks the task failed (daemon_restarted). Its checkpoints stay
usable, and resume continues from the last one with the same loss curve an
uninterrupted run has at the same steps (same data order, RNG and optimizer
state: the checkpoint carries them).
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

import pytest
from modx.v1 import system_pb2
from modx.v1 import training_pb2 as T

from ..daemon.helpers import (check_checkpoint_usable, create_request, loss_points, sft_params, state_name,
                              task_params, wait_event, wait_for_state, worker_pids)

CURVE = dict(num_train_epochs=3, per_device_train_batch_size=2, gradient_accumulation_steps=1, save_steps=3,
             logging_steps=1, max_seq_length=64, learning_rate=2e-3, seed=7)  # 16 steps an epoch, 48 in all
QUICK = dict(num_train_epochs=1, per_device_train_batch_size=8, gradient_accumulation_steps=1, logging_steps=1,
             max_seq_length=64, save_strategy="no")
LOSS_TOLERANCE = dict(rel=2e-3, abs=2e-4)  # CPU float32, same thread count: the runs agree to ~1e-6


def _reference_losses(params: dict, out: Path) -> dict[int, float]:
    """The same task trained in one go, in this process, by the same engine code."""
    from modxd.engine.train import run_training
    from modxd.train_config import TrainConfig

    from modxd.protocol import encode

    events: list[dict] = []
    config = TrainConfig.from_params("sft", **{**params, "output_dir": str(out), "save_strategy": "no"})
    run_training(config, lambda message: events.append(encode(message)), lambda: None)
    return {e["step"]: e["loss"] for e in events if e["type"] == "metrics" and e.get("loss") is not None}


def test_killed_daemon_restarts_clean_and_resume_matches_an_uninterrupted_run(
        make_daemon, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    d = make_daemon()
    tr = d.training
    victim = tr.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "a", **CURVE))).task.id
    queued = tr.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "b", **QUICK))).task.id
    tr.StartTask(T.StartTaskRequest(task_id=victim))
    tr.StartTask(T.StartTaskRequest(task_id=queued))
    wait_event(d, victim, T.EVENT_KIND_METRICS, lambda e: e.metrics.step >= 7)  # after the save at 6
    d.kill()  # SIGKILL, mid-training: more steps and saves were due
    killed_at = time.time()
    before = {c.id: c for c in _records_offline(d.state_dir, victim)}
    assert len(before) >= 2

    # the worker does not outlive its daemon
    deadline = time.time() + 10
    while worker_pids(d.state_dir) and time.time() < deadline:
        time.sleep(0.1)
    assert not worker_pids(d.state_dir), "the worker outlived its daemon"

    # the database is sound, and nothing was debited without a checkpoint record
    with sqlite3.connect(d.state_dir / "modx.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        debits = db.execute("SELECT COUNT(*) FROM quota_ledger WHERE kind = 'checkpoint'").fetchone()[0]
        records = db.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0]
        assert debits == records
    first_run = {step: loss for step, loss, _ in _losses_offline(d.state_dir, victim)}
    killed_step = max(first_run)

    again = make_daemon(state_dir=d.state_dir)
    task = again.training.GetTask(T.GetTaskRequest(task_id=victim)).task
    assert state_name(task.state) == "failed" and task.state_reason == "daemon_restarted"
    after = again.training.ListCheckpoints(T.ListCheckpointsRequest(task_id=victim)).checkpoints
    assert [c.id for c in after][: len(before)] == list(before), "a recorded checkpoint was lost"
    # anything more is a checkpoint completed on disk in the instant before the kill, adopted
    assert all(c.step > max(b.step for b in before.values()) for c in after[len(before):])
    for ckpt in after:
        check_checkpoint_usable(ckpt.path, ckpt.step)
    quota = again.system.GetQuota(system_pb2.GetQuotaRequest(ledger_limit=500))
    assert sorted(e.checkpoint_id for e in quota.ledger if e.task_id == victim) == sorted(c.id for c in after)
    assert not list((tmp_path / "a" / "checkpoints").glob(".tmp-*")), "a half-written checkpoint was left"

    # the pending task was queued again and runs first
    done = wait_for_state(again, queued, {"completed", "failed", "stopped"})
    assert state_name(done.state) == "completed", done.state_reason

    resumed = again.training.ResumeTask(T.ResumeTaskRequest(task_id=victim))
    last = after[-1]
    assert resumed.checkpoint.id == last.id and resumed.task.resume_count == 1
    final = wait_for_state(again, victim, {"completed", "failed", "stopped"}, timeout=300)
    assert state_name(final.state) == "completed", (final.state_reason, list(final.failure_log_tail))
    assert final.current_step == final.total_steps == 48

    second_run = [(step, loss) for step, loss, t in loss_points(again, victim) if t > killed_at]
    assert second_run[0][0] == last.step + 1, "resume did not continue from the last checkpoint"
    assert [s for s, _ in second_run] == list(range(last.step + 1, 49))

    reference = _reference_losses(task_params(final), tmp_path / "reference")
    assert sorted(reference) == list(range(1, 49))
    for step, loss in first_run.items():
        assert loss == pytest.approx(reference[step], **LOSS_TOLERANCE), f"first run, step {step}"
    for step, loss in second_run:
        assert loss == pytest.approx(reference[step], **LOSS_TOLERANCE), f"resumed run, step {step}"
    assert 7 <= killed_step < 48  # the kill really was mid-training


def _records_offline(state_dir: Path, task_id: str) -> list:
    """The checkpoint records as the dead daemon left them (read from SQLite directly)."""
    from types import SimpleNamespace

    with sqlite3.connect(state_dir / "modx.db") as db:
        rows = db.execute("SELECT id, step, path FROM checkpoints WHERE task_id = ? AND deleted = 0"
                          " ORDER BY step", (task_id,)).fetchall()
    assert all(os.path.isdir(path) for _, _, path in rows)
    return [SimpleNamespace(id=i, step=s, path=p) for i, s, p in rows]


def _losses_offline(state_dir: Path, task_id: str) -> list[tuple[int, float, float]]:
    with sqlite3.connect(state_dir / "modx.db") as db:
        rows = db.execute("SELECT step, time, data FROM metrics WHERE task_id = ? ORDER BY seq", (task_id,)).fetchall()
    return [(step, json.loads(data)["loss"], t) for step, t, data in rows if json.loads(data).get("loss") is not None]


def test_restart_reconciles_checkpoint_records_with_the_disk(tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    """The instants a SIGKILL can hit between disk and database, set up by hand: a checkpoint
    renamed into place but not yet recorded (adopted and debited), a recorded one that
    retention was deleting (marked deleted), a half-written staging dir (removed)."""
    import asyncio
    import shutil

    from modxd.app import App
    from modxd.config import Config
    from modxd.states import TaskState
    from modxd.store.db import Database

    async def scenario() -> None:
        config = Config(state_dir=tmp_path / "state", allowed_roots=[tmp_path, tiny_llama_dir.parent,
                                                                    sft_jsonl.parent])
        app = App(config, await Database.open(config.db_path), ["cpu"])
        await app.quota.ensure_initial(10)
        task, _ = await app.create_task("sft", "", sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "out"))
        await app.tasks.set_state(task.id, TaskState.PENDING, "queued")
        await app.tasks.set_state(task.id, TaskState.RUNNING, "running on cpu", start_time=time.time() - 60)
        ckdir = tmp_path / "out" / "checkpoints"

        def checkpoint(step: int) -> Path:
            path = ckdir / f"checkpoint-{step}"
            path.mkdir(parents=True)
            log = [{"step": s, "loss": 1.0 / s} for s in range(1, step + 1)]
            (path / "trainer_state.json").write_text(json.dumps({"global_step": step, "epoch": step / 10,
                                                                 "log_history": log}))
            return path

        for step in (2, 4):
            await app.checkpoints.record_saved(task.id, step, step / 10, 1.0 / step, str(checkpoint(step)), 10)
        shutil.rmtree(ckdir / "checkpoint-2")  # retention was deleting it
        (ckdir / ".deleting-checkpoint-2").mkdir()
        checkpoint(6)  # complete on disk, never recorded
        (ckdir / ".tmp-checkpoint-8" / "checkpoint-8").mkdir(parents=True)  # half written

        assert await app.supervisor.recover() == [task.id]
        records = {c.step: c for c in await app.checkpoints.list(task.id, include_deleted=True)}
        assert sorted(records) == [2, 4, 6]
        assert records[2].deleted and not records[4].deleted and not records[6].deleted
        assert records[6].loss == pytest.approx(1 / 6) and records[6].epoch == pytest.approx(0.6)
        assert (await app.checkpoints.latest(task.id)).step == 6
        assert sorted(p.name for p in ckdir.iterdir()) == ["checkpoint-4", "checkpoint-6"]
        ledger = await app.quota.ledger()
        assert sorted(e.checkpoint_id for e in ledger if e.kind == "checkpoint") == sorted(
            c.id for c in records.values())
        assert await app.quota.balance() == 10 - 3
        task_after = await app.tasks.get(task.id)
        assert task_after.state == TaskState.FAILED and task_after.state_reason == "daemon_restarted"
        await app.close()

    asyncio.run(scenario())
