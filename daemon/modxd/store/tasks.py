"""Tasks, their parameter snapshots, and state changes."""
from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from collections.abc import Mapping
from typing import Any

import aiosqlite

from ..errors import FailedPrecondition, NotFound
from ..params import TrainParams
from ..states import TRANSITIONS, TaskState
from .db import Database
from .events import EventRecord, insert_event

_COLUMNS = (
    "id type name template state state_reason create_time update_time start_time end_time "
    "queued_time current_step total_steps last_loss device resume_count resume_checkpoint "
    "best_checkpoint_id best_evaluation_id error failure_log_tail quota_estimate last_seq "
    "train_data eval_data settings learning estimate_checks"
).split()
# Columns that hold JSON (written with json.dumps, read with json.loads).
JSON_COLUMNS = ("failure_log_tail", "quota_estimate", "train_data", "eval_data", "settings", "learning",
                "estimate_checks")


@dataclass
class TaskRecord:
    id: str
    type: str
    name: str = ""
    template: str = ""
    state: TaskState = TaskState.CREATED
    state_reason: str = ""
    create_time: float = 0.0
    update_time: float = 0.0
    start_time: float | None = None
    end_time: float | None = None
    queued_time: float | None = None
    current_step: int = 0
    total_steps: int = 0
    last_loss: float | None = None
    device: str = ""
    resume_count: int = 0
    resume_checkpoint: str = ""
    best_checkpoint_id: str = ""
    best_evaluation_id: str = ""
    error: str = ""
    failure_log_tail: list[str] = field(default_factory=list)
    quota_estimate: dict[str, Any] = field(default_factory=dict)
    last_seq: int = 0
    params: Mapping[str, Any] = field(default_factory=dict)  # a TrainParams once stored or read back
    checkpoints_saved: int = 0
    train_data: dict[str, Any] | None = None  # engine/data_report.py DataReport.to_dict(), made at create
    eval_data: dict[str, Any] | None = None
    settings: list[dict[str, Any]] = field(default_factory=list)  # param_sources.Setting.to_dict() per parameter
    learning: dict[str, Any] | None = None  # engine/learning.py: did the run learn (after an SFT run)
    estimate_checks: list[dict[str, Any]] = field(default_factory=list)  # run_estimate.compare, after the run

    @classmethod
    def from_row(cls, row: aiosqlite.Row) -> "TaskRecord":
        data = {k: row[k] for k in _COLUMNS}
        data["state"] = TaskState(data["state"])
        for key in JSON_COLUMNS:
            data[key] = json.loads(data[key])
        return cls(**data)


class TaskRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def insert(self, task: TaskRecord) -> None:
        now = time.time()
        task.create_time = task.update_time = now

        def insert(conn: sqlite3.Connection) -> EventRecord:
            conn.execute(
                "INSERT INTO tasks (id, type, name, template, state, create_time, update_time, quota_estimate,"
                " train_data, eval_data, settings) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (task.id, task.type, task.name, task.template, task.state.value, now, now,
                 json.dumps(task.quota_estimate), json.dumps(task.train_data), json.dumps(task.eval_data),
                 json.dumps(task.settings)),
            )
            conn.executemany(
                "INSERT INTO task_params (task_id, key, value) VALUES (?, ?, ?)",
                [(task.id, k, json.dumps(v)) for k, v in sorted(task.params.items())],
            )
            return insert_event(conn, task.id, "state_change",
                                {"from": "", "to": task.state.value, "reason": "created"}, now)

        task.last_seq = (await self.db.write(insert)).seq

    async def get(self, task_id: str) -> TaskRecord:
        row = await self.db.one("SELECT * FROM tasks WHERE id = ?", (task_id,))
        if row is None:
            raise NotFound(f"task {task_id!r} does not exist")
        task = TaskRecord.from_row(row)
        task.params = await self.params(task_id, task.type)
        count = await self.db.one("SELECT COUNT(*) FROM checkpoints WHERE task_id = ?", (task_id,))
        task.checkpoints_saved = int(count[0])
        return task

    async def state_and_seq(self, task_id: str) -> tuple[TaskState, int]:
        """Just the state and the last event number (what a watcher polls)."""
        row = await self.db.one("SELECT state, last_seq FROM tasks WHERE id = ?", (task_id,))
        if row is None:
            raise NotFound(f"task {task_id!r} does not exist")
        return TaskState(row["state"]), int(row["last_seq"])

    async def params(self, task_id: str, task_type: str) -> TrainParams:
        """The task's parameters as resolve() stored them (one row per parameter, JSON values)."""
        rows = await self.db.all("SELECT key, value FROM task_params WHERE task_id = ?", (task_id,))
        return TrainParams.stored(task_type, {r["key"]: json.loads(r["value"]) for r in rows})

    async def list(self, states: list[TaskState] | None = None, task_type: str = "",
                   offset: int = 0, limit: int = 100) -> tuple[list[TaskRecord], int]:
        where, args = [], []
        if states:
            where.append(f"state IN ({','.join('?' * len(states))})")
            args += [s.value for s in states]
        if task_type:
            where.append("type = ?")
            args.append(task_type)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        total = await self.db.one(f"SELECT COUNT(*) FROM tasks {clause}", args)
        rows = await self.db.all(
            f"SELECT *, (SELECT COUNT(*) FROM checkpoints c WHERE c.task_id = tasks.id) AS n_checkpoints"
            f" FROM tasks {clause} ORDER BY create_time DESC, id LIMIT ? OFFSET ?", [*args, limit, offset])
        tasks = []
        for row in rows:
            task = TaskRecord.from_row(row)
            task.checkpoints_saved = int(row["n_checkpoints"])
            task.params = await self.params(task.id, task.type)
            tasks.append(task)
        return tasks, int(total[0])

    async def ids_in_states(self, states: list[TaskState]) -> list[str]:
        rows = await self.db.all(
            f"SELECT id FROM tasks WHERE state IN ({','.join('?' * len(states))})"
            " ORDER BY queued_time, create_time", [s.value for s in states])
        return [r["id"] for r in rows]

    async def set_state(self, task_id: str, to: TaskState, reason: str = "",
                        **fields: Any) -> int:
        """Change state, update extra columns, and record the state_change event; returns its seq."""
        now = time.time()
        columns = {**fields, "state": to.value, "state_reason": reason, "update_time": now}
        for key in JSON_COLUMNS:
            if key in columns:
                columns[key] = json.dumps(columns[key])
        assignments = ", ".join(f"{k} = ?" for k in columns)

        def move(conn: sqlite3.Connection) -> EventRecord:
            row = conn.execute("SELECT state FROM tasks WHERE id = ?", (task_id,)).fetchone()
            if row is None:
                raise NotFound(f"task {task_id!r} does not exist")
            if (TaskState(row["state"]), to) not in TRANSITIONS:
                # The last line of defence of the state machine: checked inside the write
                # transaction, so no interleaving of callers can store an illegal move.
                raise FailedPrecondition(f"task {task_id} is {row['state']}: it cannot become {to.value}")
            conn.execute(f"UPDATE tasks SET {assignments} WHERE id = ?", (*columns.values(), task_id))
            return insert_event(conn, task_id, "state_change",
                                {"from": row["state"], "to": to.value, "reason": reason}, now)

        return (await self.db.write(move)).seq

    async def update(self, task_id: str, **fields: Any) -> None:
        for key in JSON_COLUMNS:
            if key in fields:
                fields[key] = json.dumps(fields[key])
        fields["update_time"] = time.time()
        assignments = ", ".join(f"{k} = ?" for k in fields)
        async with self.db.tx() as conn:
            await conn.execute(f"UPDATE tasks SET {assignments} WHERE id = ?", (*fields.values(), task_id))

    async def delete(self, task_id: str) -> None:
        """Delete a task that holds no device (never a pending, running or stopping one)."""
        active = [s.value for s in TaskState if s.active]
        async with self.db.tx() as conn:
            cur = await conn.execute(
                f"DELETE FROM tasks WHERE id = ? AND state NOT IN ({','.join('?' * len(active))})",
                (task_id, *active))
            deleted = cur.rowcount
            await cur.close()
            if deleted == 0:
                row = await (await conn.execute("SELECT state FROM tasks WHERE id = ?", (task_id,))).fetchone()
                if row is None:
                    raise NotFound(f"task {task_id!r} does not exist")
                raise FailedPrecondition(f"task {task_id} is {row['state']}: stop it before deleting it")

    async def output_dirs(self) -> list[tuple[str, str]]:
        """(task id, output dir) of every task."""
        rows = await self.db.all("SELECT task_id, value FROM task_params WHERE key = 'output_dir'")
        return [(r["task_id"], str(json.loads(r["value"]))) for r in rows]

    async def counts(self) -> dict[str, int]:
        rows = await self.db.all("SELECT state, COUNT(*) AS n FROM tasks GROUP BY state")
        return {r["state"]: int(r["n"]) for r in rows}
