"""Checkpoint records, the quota ledger and quota holds, which change together.

A checkpoint is recorded and its quota unit debited in one transaction, so a
crash can never leave a debit without a checkpoint or the other way round.

The balance never goes below zero. Before writing a checkpoint the worker reserves a
unit (a row in ``quota_holds``); units are reserved only while the balance minus the
units already held is above zero. Recording the checkpoint turns its hold into the
debit (same transaction); a save that fails, a run that ends and a restart after a
crash release what is still held. A record without a hold (a checkpoint adopted at
recovery that no hold pays for) is paid from free units only, else refused.
"""
from __future__ import annotations

import sqlite3
import time
import uuid
from dataclasses import dataclass
from typing import Any

import aiosqlite

from ..errors import FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted, quote
from .db import Database
from .events import EventRecord, insert_event

# The reference to a task's base model (its model_dir) wherever a checkpoint reference is taken and
# the base makes sense: Chat and CreatePackage (`checkpoint: "base"`), and an evaluation's scores,
# whose best may be the base. Evaluations ask for it with include_base.
BASE_REF = "base"
# References to a task's merged model (<output_dir>/merged, merge_lora_after_training): Chat and CreatePackage.
MERGED_REFS = ("merged", "final")


@dataclass
class CheckpointRecord:
    id: str
    task_id: str
    step: int
    epoch: float
    loss: float | None
    path: str
    size_bytes: int
    create_time: float
    deleted: bool = False
    delete_time: float | None = None

    @classmethod
    def from_row(cls, row: aiosqlite.Row) -> "CheckpointRecord":
        return cls(row["id"], row["task_id"], row["step"], row["epoch"], row["loss"], row["path"],
                   row["size_bytes"], row["create_time"], bool(row["deleted"]), row["delete_time"])

    def as_payload(self) -> dict[str, Any]:
        return {"id": self.id, "task_id": self.task_id, "step": self.step, "epoch": self.epoch,
                "loss": self.loss, "path": self.path, "size_bytes": self.size_bytes,
                "create_time": self.create_time, "deleted": self.deleted, "delete_time": self.delete_time}


@dataclass
class LedgerEntry:
    id: int
    time: float
    delta: int
    balance_after: int
    kind: str
    task_id: str
    checkpoint_id: str
    note: str


def _ledger(conn: sqlite3.Connection, delta: int, kind: str, task_id: str = "",
            checkpoint_id: str = "", note: str = "") -> LedgerEntry:
    """Append a ledger row inside a `Database.write` transaction; the balance is the sum so far."""
    balance = int(conn.execute("SELECT COALESCE(SUM(delta), 0) FROM quota_ledger").fetchone()[0]) + delta
    now = time.time()
    cur = conn.execute(
        "INSERT INTO quota_ledger (time, delta, balance_after, kind, task_id, checkpoint_id, note)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)", (now, delta, balance, kind, task_id, checkpoint_id, note))
    return LedgerEntry(int(cur.lastrowid or 0), now, delta, balance, kind, task_id, checkpoint_id, note)


@dataclass
class QuotaHold:
    """One unit reserved for the checkpoint of `step` that `task_id` is about to write."""

    id: str
    task_id: str
    step: int
    time: float


def _balance_and_reserved(conn: sqlite3.Connection) -> tuple[int, int]:
    balance = int(conn.execute("SELECT COALESCE(SUM(delta), 0) FROM quota_ledger").fetchone()[0])
    reserved = int(conn.execute("SELECT COUNT(*) FROM quota_holds").fetchone()[0])
    return balance, reserved


def _take_unit(conn: sqlite3.Connection, task_id: str, step: int, hold_id: str = "", by_step: bool = False) -> None:
    """Find the unit a checkpoint is paid with, inside the recording transaction: its hold
    (by id, or at recovery by the step it was reserved for), else a free unit; raise when none."""
    if hold_id:
        taken = conn.execute("DELETE FROM quota_holds WHERE id = ? AND task_id = ?", (hold_id, task_id)).rowcount
    elif by_step:
        taken = conn.execute(
            "DELETE FROM quota_holds WHERE id = (SELECT id FROM quota_holds WHERE task_id = ? AND step = ?"
            " ORDER BY time LIMIT 1)", (task_id, step)).rowcount
    else:
        taken = 0
    if taken:
        return
    balance, reserved = _balance_and_reserved(conn)
    if balance - reserved <= 0:
        raise ResourceExhausted(
            f"the checkpoint of step {step} of task {task_id} cannot be paid for: the quota balance is "
            f"{balance} and {reserved} unit(s) are reserved by running tasks")


class CheckpointRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record_saved(self, task_id: str, step: int, epoch: float, loss: float | None,
                           path: str, size_bytes: int, hold_id: str = "", adopted: bool = False
                           ) -> tuple[CheckpointRecord, EventRecord, int]:
        """Record a durably saved checkpoint, debit one unit; returns (record, event, balance).

        The unit is the hold `hold_id` (a live run), the hold reserved for `step` (`adopted`: found on
        disk at recovery), else a free unit; with none, :class:`ResourceExhausted` and nothing changes.
        """
        ckpt = CheckpointRecord(f"ckpt-{uuid.uuid4().hex[:10]}", task_id, step, epoch, loss, path,
                                size_bytes, time.time())

        def record(conn: sqlite3.Connection) -> tuple[EventRecord, LedgerEntry]:
            _take_unit(conn, task_id, step, hold_id, by_step=adopted)
            conn.execute(
                "INSERT INTO checkpoints (id, task_id, step, epoch, loss, path, size_bytes, create_time)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (ckpt.id, task_id, step, epoch, loss, path, size_bytes, ckpt.create_time))
            entry = _ledger(conn, -1, "checkpoint", task_id, ckpt.id, f"step {step}")
            return insert_event(conn, task_id, "checkpoint_saved", ckpt.as_payload()), entry

        event, entry = await self.db.write(record)
        return ckpt, event, entry.balance_after

    async def mark_deleted(self, task_id: str, path: str) -> tuple[CheckpointRecord, EventRecord] | None:
        def mark(conn: sqlite3.Connection) -> tuple[CheckpointRecord, EventRecord] | None:
            row = conn.execute(
                "SELECT * FROM checkpoints WHERE task_id = ? AND path = ? AND deleted = 0", (task_id, path)).fetchone()
            if row is None:
                return None
            now = time.time()
            conn.execute("UPDATE checkpoints SET deleted = 1, delete_time = ? WHERE id = ?", (now, row["id"]))
            ckpt = CheckpointRecord.from_row(row)
            ckpt.deleted, ckpt.delete_time = True, now
            return ckpt, insert_event(conn, task_id, "checkpoint_deleted",
                                      {"checkpoint_id": ckpt.id, "step": ckpt.step, "path": path})

        return await self.db.write(mark)

    async def list(self, task_id: str, include_deleted: bool = False) -> list[CheckpointRecord]:
        clause = "" if include_deleted else " AND deleted = 0"
        rows = await self.db.all(
            f"SELECT * FROM checkpoints WHERE task_id = ?{clause} ORDER BY step, create_time", (task_id,))
        return [CheckpointRecord.from_row(r) for r in rows]

    async def find(self, task_id: str, ref: str) -> CheckpointRecord:
        """A checkpoint by id, step number or path; deleted ones are refused."""
        ref = ref.strip()
        if ref.lower() == BASE_REF:  # callers that take the base model (Chat, CreatePackage) ask before
            raise InvalidArgument(f"'{BASE_REF}' names the base model of task {task_id}, not a saved checkpoint; "
                                  "this call needs a checkpoint (see ListCheckpoints)")
        rows = await self.db.all(
            "SELECT * FROM checkpoints WHERE task_id = ? AND (id = ? OR path = ? OR CAST(step AS TEXT) = ?)"
            " ORDER BY create_time DESC", (task_id, ref, ref, ref.removeprefix("checkpoint-")))
        if not rows:
            raise NotFound(f"task {task_id} has no checkpoint {quote(ref)} (see ListCheckpoints, "
                           f"`modxctl train checkpoints {task_id}`)")
        ckpt = CheckpointRecord.from_row(rows[0])
        if ckpt.deleted:  # a well-formed request for something whose files are gone: the state, not the request
            raise FailedPrecondition(
                f"checkpoint {ckpt.id} (step {ckpt.step}) of task {task_id} was deleted by save_total_limit; "
                "its files are gone (ListCheckpoints lists the kept ones)")
        return ckpt

    async def latest(self, task_id: str) -> CheckpointRecord | None:
        row = await self.db.one(
            "SELECT * FROM checkpoints WHERE task_id = ? AND deleted = 0 ORDER BY step DESC, create_time DESC"
            " LIMIT 1", (task_id,))
        return CheckpointRecord.from_row(row) if row else None


class QuotaRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def ensure_initial(self, amount: int) -> None:
        """The first start of a fresh state dir records the initial allowance once."""
        def initial(conn: sqlite3.Connection) -> None:
            if conn.execute("SELECT COUNT(*) FROM quota_ledger").fetchone()[0] == 0:
                _ledger(conn, amount, "initial", note="initial allowance from config")

        await self.db.write(initial)

    async def balance(self) -> int:
        """Units not yet spent (the ledger's sum; never below zero). Some may be reserved."""
        row = await self.db.one("SELECT COALESCE(SUM(delta), 0) FROM quota_ledger")
        return int(row[0])

    async def reserved(self) -> int:
        """Units held for checkpoints being written."""
        row = await self.db.one("SELECT COUNT(*) FROM quota_holds")
        return int(row[0])

    async def reserve(self, task_id: str, step: int) -> QuotaHold | None:
        """Hold a unit for the checkpoint of `step`, or None when every unit is spent or held."""
        def hold(conn: sqlite3.Connection) -> QuotaHold | None:
            balance, reserved = _balance_and_reserved(conn)
            if balance - reserved <= 0:
                return None
            held = QuotaHold(f"hold-{uuid.uuid4().hex[:10]}", task_id, step, time.time())
            conn.execute("INSERT INTO quota_holds (id, task_id, step, time) VALUES (?, ?, ?, ?)",
                         (held.id, task_id, step, held.time))
            return held

        return await self.db.write(hold)

    async def release(self, hold_id: str) -> bool:
        """Give a held unit back (its save failed); False when it was already spent or released."""
        def drop(conn: sqlite3.Connection) -> int:
            return conn.execute("DELETE FROM quota_holds WHERE id = ?", (hold_id,)).rowcount

        return bool(await self.db.write(drop))

    async def release_task(self, task_id: str) -> int:
        """Give back everything a run still holds (it ended); returns how many units."""
        def drop(conn: sqlite3.Connection) -> int:
            return conn.execute("DELETE FROM quota_holds WHERE task_id = ?", (task_id,)).rowcount

        return int(await self.db.write(drop))

    async def release_all(self) -> int:
        """At start-up: no worker survives a restart, so nothing can still be held."""
        def drop(conn: sqlite3.Connection) -> int:
            return conn.execute("DELETE FROM quota_holds").rowcount

        return int(await self.db.write(drop))

    async def totals(self) -> tuple[int, int, int]:
        """(balance, consumed, granted incl. initial)."""
        row = await self.db.one(
            "SELECT COALESCE(SUM(delta), 0), COALESCE(-SUM(CASE WHEN delta < 0 THEN delta END), 0),"
            " COALESCE(SUM(CASE WHEN delta > 0 THEN delta END), 0) FROM quota_ledger")
        return int(row[0]), int(row[1]), int(row[2])

    async def grant(self, amount: int, note: str) -> LedgerEntry:
        return await self.db.write(_ledger, amount, "grant", "", "", note)

    async def ledger(self, limit: int = 50) -> list[LedgerEntry]:
        rows = await self.db.all("SELECT * FROM quota_ledger ORDER BY id DESC LIMIT ?", (limit,))
        return [LedgerEntry(r["id"], r["time"], r["delta"], r["balance_after"], r["kind"], r["task_id"],
                            r["checkpoint_id"], r["note"]) for r in rows]
