"""Database.write: a whole transaction in one hand-off to the database thread (the metrics path)."""
from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from modxd.store.db import Database, DatabaseFull
from modxd.store.events import EventRepo, insert_event

POINT = {"step": 3, "total_steps": 40, "epoch": 0.2, "loss": 2.5, "learning_rate": 1e-3, "time": 1.5}


async def _open(tmp_path: Path) -> tuple[Database, EventRepo]:
    db = await Database.open(tmp_path / "state.db")
    await db.conn.execute(
        "INSERT INTO tasks (id, type, state, create_time, update_time) VALUES ('t', 'sft', 'running', 0, 0)")
    return db, EventRepo(db)


async def test_a_metrics_point_is_an_event_a_history_row_and_the_tasks_progress(tmp_path: Path) -> None:
    db, events = await _open(tmp_path)
    try:
        event = await events.append_metrics("t", POINT)
        assert (event.seq, event.kind, event.payload) == (1, "metrics", POINT)
        assert [(e.seq, e.kind, e.payload) for e in await events.after("t", 0)] == [(1, "metrics", POINT)]
        assert await events.metrics("t") == [{**POINT, "time": POINT["time"]}]
        row = await db.one("SELECT current_step, total_steps, last_loss, last_seq FROM tasks WHERE id = 't'")
        assert tuple(row) == (3, 40, 2.5, 1)
        no_loss = await events.append_metrics("t", {"step": 4, "eval_loss": 2.0})
        row = await db.one("SELECT current_step, total_steps, last_loss, last_seq FROM tasks WHERE id = 't'")
        assert tuple(row) == (4, 40, 2.5, 2) and no_loss.seq == 2  # an eval point keeps the last training loss
    finally:
        await db.close()


async def test_a_failing_write_changes_nothing(tmp_path: Path) -> None:
    db, events = await _open(tmp_path)
    try:
        await events.append("t", "log", {"level": "info", "message": "before"})

        def half_then_fail(conn: sqlite3.Connection) -> None:
            insert_event(conn, "t", "log", {"level": "info", "message": "half"})
            raise RuntimeError("disk said no")

        with pytest.raises(RuntimeError, match="disk said no"):
            await db.write(half_then_fail)
        assert [e.payload["message"] for e in await events.after("t", 0)] == ["before"]
        assert (await db.one("SELECT last_seq FROM tasks WHERE id = 't'"))[0] == 1
        assert not db.conn.in_transaction
        assert (await events.append("t", "log", {"level": "info", "message": "after"})).seq == 2
    finally:
        await db.close()


async def test_concurrent_writes_and_transactions_number_events_without_gaps(tmp_path: Path) -> None:
    """write() and tx() share the one-writer lock: interleaved, they never mix statements."""
    db, events = await _open(tmp_path)

    async def through_tx(i: int) -> int:  # a multi-statement transaction of the other kind, awaiting between
        async with db.tx() as conn:
            cur = await conn.execute("SELECT last_seq FROM tasks WHERE id = 't'")
            seq = (await cur.fetchone())[0] + 1
            await cur.close()
            await asyncio.sleep(0)
            await conn.execute("UPDATE tasks SET last_seq = ? WHERE id = 't'", (seq,))
            await conn.execute("INSERT INTO task_events (task_id, seq, time, kind, payload)"
                               " VALUES ('t', ?, 0, 'log', ?)", (seq, f'{{"level": "info", "message": "tx {i}"}}'))
            return seq

    try:
        seqs = await asyncio.gather(*[events.append_metrics("t", {**POINT, "step": i}) if i % 2 else through_tx(i)
                                      for i in range(60)])
        numbers = sorted(s if isinstance(s, int) else s.seq for s in seqs)
        assert numbers == list(range(1, 61))
        assert [e.seq for e in await events.after("t", 0)] == numbers
        assert len(await events.metrics("t")) == 30
    finally:
        await db.close()


async def test_a_full_database_fails_the_write_with_its_own_error_and_keeps_the_rest(tmp_path: Path) -> None:
    """SQLite may roll a transaction back itself when the disk is full: the caller must see "disk full"
    (a sentence naming the database, RESOURCE_EXHAUSTED), not a failed ROLLBACK, and the database must
    take writes again once there is room."""
    db, events = await _open(tmp_path)
    try:
        await events.append_metrics("t", POINT)
        pages = (await db.one("PRAGMA page_count"))[0]
        await db.conn.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(DatabaseFull, match=f"disk full: the daemon cannot write its database {tmp_path / 'state.db'}"):
            await events.append("t", "log", {"level": "info", "message": "x" * 200_000})
        assert not db.conn.in_transaction
        assert [e.seq for e in await events.after("t", 0)] == [1]
        assert (await db.one("SELECT last_seq FROM tasks WHERE id = 't'"))[0] == 1
        await db.conn.execute("PRAGMA max_page_count = 1073741823")
        assert (await events.append("t", "log", {"level": "info", "message": "room again"})).seq == 2
    finally:
        await db.close()


async def test_a_full_database_fails_a_transaction_with_its_own_error(tmp_path: Path) -> None:
    db, events = await _open(tmp_path)
    try:
        pages = (await db.one("PRAGMA page_count"))[0]
        await db.conn.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(DatabaseFull, match=f"disk full: the daemon cannot write its database {tmp_path / 'state.db'}"):
            async with db.tx() as conn:
                await conn.execute("UPDATE tasks SET name = ? WHERE id = 't'", ("x" * 200_000,))
        assert not db.conn.in_transaction
        assert (await db.one("SELECT name FROM tasks WHERE id = 't'"))[0] == ""
    finally:
        await db.close()
