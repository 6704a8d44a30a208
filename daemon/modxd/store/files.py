"""The manifest of what each task (its training, evaluations and packages) wrote on disk.

Rows are written from the workers' ``files`` messages and from the dirs the daemon itself made
(modxd/files.py says what the entries mean); ``DeleteTask`` with files deletes exactly these
paths. A row names an existing task when it is written, and outlives the task only until its
files are deleted.
"""
from __future__ import annotations

import sqlite3
import time
from typing import Any, Iterable

from .db import Database


class FileRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def apply(self, task_id: str, source: str, wrote: Iterable[dict[str, Any]] = (),
                    removed: Iterable[str] = ()) -> None:
        """Record what was written and forget what is gone (a path and everything under it), in one
        transaction; nothing is recorded for a task that no longer exists."""
        rows = [(task_id, e["path"], e["kind"], e.get("dev"), e.get("ino"), source) for e in wrote]
        gone = list(removed)
        if not rows and not gone:
            return
        now = time.time()

        def write(conn: sqlite3.Connection) -> None:
            if conn.execute("SELECT 1 FROM tasks WHERE id = ?", (task_id,)).fetchone() is None:
                return
            for path in gone:
                conn.execute("DELETE FROM task_files WHERE task_id = ? AND (path = ? OR substr(path, 1, ?) = ?)",
                             (task_id, path, len(path) + 1, path.rstrip("/") + "/"))
            conn.executemany(
                "INSERT INTO task_files (task_id, path, kind, dev, ino, source, time) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (task_id, path) DO UPDATE SET kind = excluded.kind, dev = excluded.dev,"
                " ino = excluded.ino, source = excluded.source, time = excluded.time",
                [(*row, now) for row in rows])

        await self.db.write(write)

    async def list(self, task_id: str) -> list[dict[str, Any]]:
        rows = await self.db.all("SELECT path, kind, dev, ino, source FROM task_files WHERE task_id = ? ORDER BY path",
                                 (task_id,))
        return [dict(r) for r in rows]

    async def drop(self, task_id: str) -> None:
        await self.db.write(lambda conn: conn.execute("DELETE FROM task_files WHERE task_id = ?", (task_id,)))

    async def drop_orphans(self) -> int:
        """Rows of tasks deleted by a daemon that died before it dropped them (at start-up)."""
        def drop(conn: sqlite3.Connection) -> int:
            return conn.execute("DELETE FROM task_files WHERE task_id NOT IN (SELECT id FROM tasks)").rowcount

        return await self.db.write(drop)
