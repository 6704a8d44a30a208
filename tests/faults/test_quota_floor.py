"""The quota balance never goes below zero (issue 18, item 4).

Before a save the worker reserves a unit and waits for the daemon's answer; the hold becomes
the debit when the checkpoint is recorded and is released when the save fails, when the run
ends, and at start-up after a crash. A task that cannot pay for its next checkpoint stops as
`stopped` / `quota_exhausted` before writing it. Before the fix, a balance of 1 and two queued
tasks ended at -1: the second task started on an empty balance and was charged for its save.
"""
from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

import pytest
from modx.v1 import system_pb2
from modx.v1 import training_pb2 as T

from modxd.app import App
from modxd.config import Config
from modxd.errors import ResourceExhausted
from modxd.states import TaskState
from modxd.store.db import Database
from tests.fixtures.plugin import EventRecorder, engine_config

from ..daemon.helpers import create_request, sft_params, state_name, wait_event, wait_for_state
from .conftest import fill_disk

SAVE_EVERY_STEP = dict(num_train_epochs=1, per_device_train_batch_size=1, gradient_accumulation_steps=1,
                       logging_steps=1, max_seq_length=64, save_steps=1, max_samples=8)


def _ledger_offline(state_dir: Path) -> list[tuple[int, int, str]]:
    with sqlite3.connect(state_dir / "modx.db") as db:
        return db.execute("SELECT delta, balance_after, kind FROM quota_ledger ORDER BY id").fetchall()


def _assert_never_negative(rows: list[tuple[int, int, str]]) -> None:
    running = 0
    for delta, balance_after, kind in rows:
        running += delta
        assert balance_after == running >= 0, rows


# ----------------------------------------------------------------------------- a real daemon

def test_two_queued_tasks_on_one_unit_end_at_zero(make_daemon, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    d = make_daemon(quota=1)
    tr = d.training
    first = tr.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "a",
                                                      **SAVE_EVERY_STEP))).task.id
    second = tr.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "b",
                                                       **SAVE_EVERY_STEP))).task.id
    tr.StartTask(T.StartTaskRequest(task_id=first))
    tr.StartTask(T.StartTaskRequest(task_id=second))  # accepted: the balance is still 1
    a = wait_for_state(d, first, {"completed", "failed", "stopped"})
    b = wait_for_state(d, second, {"completed", "failed", "stopped"})
    assert (state_name(a.state), a.state_reason) == ("stopped", "quota_exhausted")
    assert (state_name(b.state), b.state_reason) == ("stopped", "quota_exhausted")
    assert len(tr.ListCheckpoints(T.ListCheckpointsRequest(task_id=first)).checkpoints) == 1
    assert not tr.ListCheckpoints(T.ListCheckpointsRequest(task_id=second, include_deleted=True)).checkpoints
    assert not list((tmp_path / "b").glob("checkpoints/checkpoint-*")), "the unpaid task saved a checkpoint"
    quota = d.system.GetQuota(system_pb2.GetQuotaRequest(ledger_limit=100))
    assert (quota.balance, quota.reserved) == (0, 0)
    rows = _ledger_offline(d.state_dir)
    _assert_never_negative(rows)
    with sqlite3.connect(d.state_dir / "modx.db") as db:
        records = db.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0]
        holds = db.execute("SELECT COUNT(*) FROM quota_holds").fetchone()[0]
    assert [k for _, _, k in rows].count("checkpoint") == records == 1 and holds == 0
    codes = [r.event.warning.code for r in tr.WatchTask(T.WatchTaskRequest(task_id=second,
                                                                           kinds=[T.EVENT_KIND_WARNING]))]
    assert "quota_exhausted" in codes
    shown = d.cli("quota").stdout
    assert "balance:   0 units" in shown and "reserved:  0 " in shown, shown


def test_a_save_that_meets_a_full_disk_releases_its_unit(roots, small_disk, tiny_llama_dir, sft_jsonl,
                                                          tmp_path_factory) -> None:
    from tests.support.daemon import Daemon

    d = Daemon(tmp_path_factory.mktemp("quota-disk") / "state", [roots], quota=5).start()
    try:
        slow = dict(SAVE_EVERY_STEP, num_train_epochs=50, save_steps=3, max_samples=0)
        task_id = d.training.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, small_disk / "o",
                                                                    **slow))).task.id
        d.training.StartTask(T.StartTaskRequest(task_id=task_id))
        wait_event(d, task_id, T.EVENT_KIND_CHECKPOINT_SAVED)
        fill_disk(small_disk)
        task = wait_for_state(d, task_id, {"failed", "stopped", "completed"}, timeout=120)
        assert state_name(task.state) == "failed" and task.state_reason.startswith("disk full"), task.state_reason
        quota = d.system.GetQuota(system_pb2.GetQuotaRequest())
        assert (quota.balance, quota.reserved) == (4, 0)
        _assert_never_negative(_ledger_offline(d.state_dir))
    finally:
        d.kill()


# ----------------------------------------------------------------------------- the daemon in this process

def _config(tmp_path: Path, roots: Path, quota: int) -> Config:
    return Config(state_dir=tmp_path / "state", allowed_roots=[roots], quota_initial=quota)


async def _open(tmp_path: Path, roots: Path, quota: int) -> App:
    config = _config(tmp_path, roots, quota)
    app = App(config, await Database.open(config.db_path), ["cpu"])
    await app.quota.ensure_initial(quota)
    return app


async def _until_terminal(app: App, task_id: str, timeout: float = 600.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = await app.tasks.get(task_id)
        if task.state.terminal and task_id not in app.supervisor.running:
            return task
        await asyncio.sleep(0.2)
    raise AssertionError(f"task {task_id} did not end in {timeout}s")


@pytest.mark.parametrize("devices", ["1", "2"], ids=["one-process", "two-ranks"])
def test_a_task_that_cannot_pay_stops_before_saving(devices, roots, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    """The last unit is held by another run (the state of two tasks racing for it): the task trains,
    asks for a unit at its first save, is refused, and stops without writing the checkpoint."""
    async def scenario() -> None:
        app = await _open(tmp_path, roots, quota=1)
        try:
            holder, _ = await app.create_task("sft", "", sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "h"))
            held = await app.quota.reserve(holder.id, 3)
            assert held is not None
            task, _ = await app.create_task("sft", "", sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "o",
                                                                  devices=devices, **SAVE_EVERY_STEP))
            await app.start_task(task.id)
            done = await _until_terminal(app, task.id)
            assert (done.state, done.state_reason) == (TaskState.STOPPED, "quota_exhausted"), \
                (done.state, done.state_reason, done.failure_log_tail)
            assert done.current_step >= 1, "it trained until its first save"
            assert not await app.checkpoints.list(task.id, include_deleted=True)
            assert not list((tmp_path / "o").glob("checkpoints/*checkpoint-*"))
            assert await app.quota.totals() == (1, 0, 1) and await app.quota.reserved() == 1  # the other hold
            events = await app.events.after(task.id, 0, limit=10_000)
            assert any(e.kind == "warning" and e.payload["code"] == "quota_exhausted" for e in events)
            assert await app.quota.release(held.id)
            assert await app.quota.reserved() == 0 and await app.quota.balance() == 1
        finally:
            await app.close()

    asyncio.run(scenario())


def test_a_crash_between_reserve_and_record_neither_loses_nor_overdraws(roots, tiny_llama_dir, sft_jsonl,
                                                                         tmp_path) -> None:
    """At restart a hold whose checkpoint is complete on disk becomes its debit; every other hold
    is released; an unrecorded checkpoint that no hold pays for is adopted only from free units."""
    async def scenario() -> None:
        app = await _open(tmp_path, roots, quota=2)

        async def crashed_run(name: str) -> tuple[str, Path]:
            task, _ = await app.create_task("sft", "", sft_params(tiny_llama_dir, sft_jsonl, tmp_path / name))
            await app.tasks.set_state(task.id, TaskState.PENDING, "queued")
            await app.tasks.set_state(task.id, TaskState.RUNNING, "running on cpu", start_time=time.time() - 60)
            return task.id, tmp_path / name / "checkpoints"

        def checkpoint(directory: Path, step: int) -> None:
            path = directory / f"checkpoint-{step}"
            path.mkdir(parents=True)
            (path / "trainer_state.json").write_text(json.dumps({"global_step": step, "epoch": step / 10,
                                                                 "log_history": [{"step": step, "loss": 1.0}]}))

        paid, paid_dir = await crashed_run("paid")
        assert await app.quota.reserve(paid, 6) and await app.quota.reserve(paid, 8)
        assert await app.quota.reserve(paid, 10) is None, "a third hold on a balance of 2"
        checkpoint(paid_dir, 6)  # renamed into place, the daemon died before recording it
        (paid_dir / ".tmp-checkpoint-8" / "checkpoint-8").mkdir(parents=True)  # killed mid-save
        unpaid, unpaid_dir = await crashed_run("unpaid")
        for step in (2, 4):  # complete on disk, no hold (written by a daemon before holds existed)
            checkpoint(unpaid_dir, step)

        await app.supervisor.recover()
        assert [c.step for c in await app.checkpoints.list(paid)] == [6]
        adopted = await app.checkpoints.list(unpaid)
        assert len(adopted) <= 1
        balance, consumed, _ = await app.quota.totals()
        assert await app.quota.reserved() == 0
        assert balance == 2 - 1 - len(adopted) >= 0 and consumed == 1 + len(adopted)
        _assert_never_negative([(e.delta, e.balance_after, e.kind) for e in reversed(await app.quota.ledger())])
        await app.close()

    asyncio.run(scenario())


# ----------------------------------------------------------------------------- the store

def test_reservations_are_atomic_and_never_overdraw(tmp_path, roots, tiny_llama_dir, sft_jsonl) -> None:
    async def scenario() -> None:
        app = await _open(tmp_path, roots, quota=3)
        task, _ = await app.create_task("sft", "", sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "o"))
        holds = await asyncio.gather(*(app.quota.reserve(task.id, step) for step in range(1, 11)))
        granted = [h for h in holds if h is not None]
        assert len(granted) == 3 and await app.quota.reserved() == 3 and await app.quota.balance() == 3

        # a hold becomes the debit in the same transaction as the record
        ckpt, _, balance = await app.checkpoints.record_saved(task.id, granted[0].step, 0.1, 1.0,
                                                              str(tmp_path / "o" / "c1"), 10, hold_id=granted[0].id)
        assert balance == 2 and await app.quota.reserved() == 2
        # a hold can be spent once
        with pytest.raises(ResourceExhausted):
            await app.checkpoints.record_saved(task.id, 99, 0.1, 1.0, str(tmp_path / "o" / "c2"), 10,
                                               hold_id=granted[0].id)
        assert len(await app.checkpoints.list(task.id)) == 1
        # released units are free again; a release is idempotent
        assert await app.quota.release(granted[1].id) and not await app.quota.release(granted[1].id)
        assert await app.quota.reserved() == 1
        # without a hold, a record is paid from free units only
        await app.checkpoints.record_saved(task.id, 5, 0.5, 1.0, str(tmp_path / "o" / "c5"), 10)
        assert await app.quota.balance() == 1 and await app.quota.reserved() == 1
        with pytest.raises(ResourceExhausted):
            await app.checkpoints.record_saved(task.id, 6, 0.6, 1.0, str(tmp_path / "o" / "c6"), 10)
        assert await app.quota.reserve(task.id, 7) is None
        # a grant makes room; releasing a run's holds frees them all
        await app.quota.grant(2, "more")
        assert await app.quota.reserve(task.id, 7) is not None
        assert await app.quota.release_task(task.id) == 2 and await app.quota.reserved() == 0
        assert await app.quota.balance() == 3
        _assert_never_negative([(e.delta, e.balance_after, e.kind) for e in reversed(await app.quota.ledger())])
        await app.close()

    asyncio.run(scenario())


# ----------------------------------------------------------------------------- the worker's side

class ScriptedDaemon:
    """The daemon's half of the reservation, answered by a rule (the engine runs in this process)."""

    def __init__(self, grant: bool) -> None:
        import queue

        self.grant = grant
        self.inbox: "queue.Queue[object]" = queue.Queue()
        self.events = EventRecorder()
        self.requests: list[object] = []

    def emit(self, message: object) -> None:
        from modxd.protocol import QUOTA_EXHAUSTED, QuotaReply, QuotaReserve

        self.events(message)
        if isinstance(message, QuotaReserve):
            self.requests.append(message)
            hold = f"hold-{message.step}" if self.grant else ""
            self.inbox.put(QuotaReply(message.request_id, hold_id=hold, reason="" if hold else QUOTA_EXHAUSTED,
                                      message="" if hold else "the quota balance is 0"))

    def poll(self, timeout: float | None = 0.0) -> object | None:
        import queue

        try:
            return self.inbox.get(timeout=timeout) if timeout else self.inbox.get_nowait()
        except queue.Empty:
            return None


@pytest.mark.parametrize("grant", [True, False], ids=["granted", "refused"])
def test_every_save_is_paid_before_it_is_written(grant, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    from modxd.engine.train import run_training

    daemon = ScriptedDaemon(grant)
    result = run_training(engine_config(tiny_llama_dir, sft_jsonl, tmp_path / "o", reserve_quota=True,
                                        save_strategy="steps", save_steps=2, per_device_train_batch_size=8),
                          daemon.emit, daemon.poll)
    saved = daemon.events.of("checkpoint")
    if grant:
        assert result["outcome"] == "completed"
        assert [c["step"] for c in saved] == [2, 4] and [c["hold_id"] for c in saved] == ["hold-2", "hold-4"]
        assert [r.step for r in daemon.requests] == [2, 4]
    else:
        assert (result["outcome"], result["reason"]) == ("stopped", "quota_exhausted")
        assert result["final_step"] == 2 and not saved and [r.step for r in daemon.requests] == [2]
        assert not list((tmp_path / "o").glob("checkpoints/*checkpoint-*"))


def test_the_gate_keeps_commands_that_arrive_while_it_waits() -> None:
    from modxd.engine import quota
    from modxd.protocol import QuotaRelease, QuotaReply, QuotaReserve, Stop

    script: list[object] = []
    sent: list[object] = []
    gate = quota.QuotaGate(sent.append, lambda timeout=0.0: script.pop(0) if script else None, enabled=True)

    stop = Stop(reason="user", save=True)
    script[:] = [QuotaReply(999, hold_id="stale"), stop, QuotaReply(1, hold_id="h1")]
    decision = gate.reserve(5)
    assert decision.granted and decision.hold_id == "h1" and sent[0] == QuotaReserve(1, 5)
    assert gate.poll() == stop and gate.poll() is None  # the stop is still obeyed, the stale reply dropped

    script[:] = [Stop(reason="daemon_gone", save=True)]
    decision = gate.reserve(6)
    assert not decision.granted and decision.reason == "daemon_gone"

    gate.release("h1")
    assert sent[-1] == QuotaRelease("h1")
    off = quota.QuotaGate(sent.append, lambda timeout=0.0: None, enabled=False)
    assert off.reserve(3).granted and len(sent) == 3  # nothing asked of a daemon that does not charge
