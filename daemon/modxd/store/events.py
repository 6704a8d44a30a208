"""The per-task event log (every watchable event, numbered by `seq`) and metrics history.

`seq` comes from tasks.last_seq, incremented in the same transaction as the
insert, so numbers are gap-free and survive restarts.
"""
from __future__ import annotations

import json
import math
import sqlite3
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from .db import Database

_DECODED: "OrderedDict[tuple[str, int], EventRecord]" = OrderedDict()
_DECODED_MAX = 8192

EVENT_KINDS = ("state_change", "metrics", "log", "checkpoint_saved", "checkpoint_deleted", "warning")


@dataclass(frozen=True)
class EventRecord:
    task_id: str
    seq: int
    time: float
    kind: str
    payload: dict[str, Any]


def insert_event(conn: sqlite3.Connection, task_id: str, kind: str, payload: dict[str, Any],
                 now: float | None = None) -> EventRecord:
    """Number and store one event inside a `Database.write` transaction (plain sqlite3, on the
    database's thread): the task's last_seq and the event change together or not at all."""
    now = time.time() if now is None else now
    seq = int(conn.execute("UPDATE tasks SET last_seq = last_seq + 1 WHERE id = ? RETURNING last_seq",
                           (task_id,)).fetchone()[0])
    conn.execute("INSERT INTO task_events (task_id, seq, time, kind, payload) VALUES (?, ?, ?, ?, ?)",
                 (task_id, seq, now, kind, json.dumps(payload)))
    return EventRecord(task_id, seq, now, kind, payload)


def insert_metrics(conn: sqlite3.Connection, task_id: str, point: dict[str, Any]) -> EventRecord:
    """A metrics point: an event, a row of the metrics history and the task's progress columns.

    A value that is not a finite number is stored as missing: NaN is never shown as a number.
    """
    point = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in point.items()}
    event = insert_event(conn, task_id, "metrics", point)
    step = int(point.get("step", 0))
    conn.execute("INSERT INTO metrics (task_id, seq, step, time, data) VALUES (?, ?, ?, ?, ?)",
                 (task_id, event.seq, step, event.time, json.dumps(point)))
    fields: dict[str, Any] = {"current_step": step, "update_time": event.time}
    if point.get("total_steps"):
        fields["total_steps"] = int(point["total_steps"])
    if point.get("loss") is not None:
        fields["last_loss"] = float(point["loss"])
    sets = ", ".join(f"{k} = ?" for k in fields)
    conn.execute(f"UPDATE tasks SET {sets} WHERE id = ?", (*fields.values(), task_id))
    return event


class EventRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def append(self, task_id: str, kind: str, payload: dict[str, Any]) -> EventRecord:
        return await self.db.write(insert_event, task_id, kind, payload)

    async def append_metrics(self, task_id: str, point: dict[str, Any]) -> EventRecord:
        """A metrics point is an event and a row of the metrics history, in one transaction."""
        return await self.db.write(insert_metrics, task_id, point)

    async def after(self, task_id: str, after_seq: int, kinds: list[str] | None = None,
                    limit: int = 1000) -> list[EventRecord]:
        args: list[Any] = [task_id, after_seq]
        clause = ""
        if kinds:
            clause = f" AND kind IN ({','.join('?' * len(kinds))})"
            args += kinds
        rows = await self.db.all(
            f"SELECT * FROM task_events WHERE task_id = ? AND seq > ?{clause} ORDER BY seq LIMIT ?",
            [*args, limit])
        out = []
        for r in rows:  # stored events never change: watchers replaying one history share the decode
            key = (r["task_id"], r["seq"])
            event = _DECODED.get(key)
            if event is None or event.time != r["time"]:
                event = EventRecord(r["task_id"], r["seq"], r["time"], r["kind"], json.loads(r["payload"]))
                _DECODED[key] = event
                if len(_DECODED) > _DECODED_MAX:
                    _DECODED.popitem(last=False)
            out.append(event)
        return out

    async def last_logs(self, task_id: str, count: int = 20) -> list[str]:
        rows = await self.db.all(
            "SELECT payload FROM task_events WHERE task_id = ? AND kind = 'log' ORDER BY seq DESC LIMIT ?",
            (task_id, count))
        return [json.loads(r["payload"]).get("message", "") for r in reversed(rows)]

    async def metrics(self, task_id: str, after_step: int = -1, offset: int = 0,
                      limit: int = 1000) -> list[dict[str, Any]]:
        rows = await self.db.all(
            "SELECT time, data FROM metrics WHERE task_id = ? AND step > ? ORDER BY seq LIMIT ? OFFSET ?",
            (task_id, after_step, limit, offset))
        # A point's own "time" (when the worker logged it) wins over when it was stored.
        return [{"time": r["time"], **json.loads(r["data"])} for r in rows]
