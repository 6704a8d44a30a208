"""Background jobs that belong to a task (evaluations, packages) and their event logs.

Same shape as tasks: a state, a request and a result as JSON, and a gap-free
`seq` per job for WatchEvaluation / WatchPackage.
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiosqlite

from ..errors import NotFound
from ..states import JobState, check_job_transition
from .db import Database
from .events import EventRecord


@dataclass
class JobRecord:
    id: str
    kind: str  # "eval" or "package"
    task_id: str
    state: JobState = JobState.PENDING
    state_reason: str = ""
    request: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    create_time: float = 0.0
    end_time: float | None = None
    last_seq: int = 0

    @property
    def terminal(self) -> bool:
        return self.state.terminal

    @classmethod
    def from_row(cls, row: aiosqlite.Row) -> "JobRecord":
        return cls(row["id"], row["kind"], row["task_id"], JobState(row["state"]), row["state_reason"],
                   json.loads(row["request"]), json.loads(row["result"]), row["create_time"], row["end_time"],
                   row["last_seq"])


async def _append(conn: aiosqlite.Connection, job_id: str, kind: str, payload: dict[str, Any]) -> EventRecord:
    now = time.time()
    cur = await conn.execute("UPDATE jobs SET last_seq = last_seq + 1 WHERE id = ? RETURNING last_seq", (job_id,))
    (seq,) = await cur.fetchone()
    await cur.close()
    await conn.execute("INSERT INTO job_events (job_id, seq, time, kind, payload) VALUES (?, ?, ?, ?, ?)",
                       (job_id, seq, now, kind, json.dumps(payload)))
    return EventRecord(job_id, int(seq), now, kind, payload)


class JobRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, kind: str, task_id: str, request: dict[str, Any], prefix: str) -> tuple[JobRecord,
                                                                                                  EventRecord]:
        job = JobRecord(f"{prefix}-{uuid.uuid4().hex[:8]}", kind, task_id, request=request, create_time=time.time())
        async with self.db.tx() as conn:
            await conn.execute(
                "INSERT INTO jobs (id, kind, task_id, state, request, create_time) VALUES (?, ?, ?, ?, ?, ?)",
                (job.id, kind, task_id, job.state.value, json.dumps(request), job.create_time))
            event = await _append(conn, job.id, "state", {"state": job.state.value, "reason": "created"})
        job.last_seq = event.seq
        return job, event

    async def get(self, job_id: str, kind: str) -> JobRecord:
        row = await self.db.one("SELECT * FROM jobs WHERE id = ? AND kind = ?", (job_id, kind))
        if row is None:
            noun = {"eval": "evaluation", "package": "package"}.get(kind, kind)
            raise NotFound(f"{noun} {job_id!r} does not exist")
        return JobRecord.from_row(row)

    async def list(self, kind: str, task_id: str = "", offset: int = 0, limit: int = 50) -> tuple[list[JobRecord], int]:
        clause, args = "WHERE kind = ?", [kind]
        if task_id:
            clause += " AND task_id = ?"
            args.append(task_id)
        total = await self.db.one(f"SELECT COUNT(*) FROM jobs {clause}", args)
        rows = await self.db.all(f"SELECT * FROM jobs {clause} ORDER BY create_time DESC LIMIT ? OFFSET ?",
                                 [*args, limit, offset])
        return [JobRecord.from_row(r) for r in rows], int(total[0])

    async def set_state(self, job_id: str, state: JobState, reason: str = "",
                        result: dict[str, Any] | None = None) -> EventRecord:
        """Move a job (states.JOB_TRANSITIONS, checked inside the write transaction, so no interleaving of
        callers stores an illegal move) and record the state event."""
        async with self.db.tx() as conn:
            cur = await conn.execute("SELECT state FROM jobs WHERE id = ?", (job_id,))
            row = await cur.fetchone()
            await cur.close()
            if row is None:
                raise NotFound(f"job {job_id!r} does not exist")
            check_job_transition(job_id, JobState(row["state"]), state)
            fields: dict[str, Any] = {"state": state.value, "state_reason": reason}
            if state.terminal:
                fields["end_time"] = time.time()
            if result is not None:
                fields["result"] = json.dumps(result)
            sets = ", ".join(f"{k} = ?" for k in fields)
            await conn.execute(f"UPDATE jobs SET {sets} WHERE id = ?", (*fields.values(), job_id))
            return await _append(conn, job_id, "state", {"state": state.value, "reason": reason})

    async def append(self, job_id: str, kind: str, payload: dict[str, Any]) -> EventRecord:
        async with self.db.tx() as conn:
            return await _append(conn, job_id, kind, payload)

    async def after(self, job_id: str, after_seq: int, limit: int = 500) -> list[EventRecord]:
        rows = await self.db.all(
            "SELECT * FROM job_events WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?", (job_id, after_seq, limit))
        return [EventRecord(r["job_id"], r["seq"], r["time"], r["kind"], json.loads(r["payload"])) for r in rows]

    async def active_for_task(self, task_id: str) -> str:
        """'evaluation ev-x' / 'package pkg-y' when a job of the task is pending or running, else ''."""
        row = await self.db.one("SELECT id, kind FROM jobs WHERE task_id = ? AND state IN (?, ?)"
                                " ORDER BY create_time LIMIT 1", (task_id, JobState.PENDING.value,
                                                                  JobState.RUNNING.value))
        if row is None:
            return ""
        noun = "evaluation" if row["kind"] == "eval" else row["kind"]
        return f"{noun} {row['id']}"

    async def ids_in_states(self, states: tuple[JobState, ...]) -> list[str]:
        rows = await self.db.all(f"SELECT id FROM jobs WHERE state IN ({','.join('?' * len(states))})",
                                 [s.value for s in states])
        return [r["id"] for r in rows]
