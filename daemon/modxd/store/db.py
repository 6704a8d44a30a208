"""Open the database in WAL mode and bring its schema up to date.

Migrations are numbered SQL scripts applied in order inside a transaction, so a
crash mid-migration leaves the previous version intact.
"""
from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Sequence, TypeVar

import aiosqlite

from ..errors import ModxError, ResourceExhausted, Unavailable

R = TypeVar("R")

MIGRATIONS: list[str] = [
    # 1: the spine
    """
    CREATE TABLE tasks (
        id TEXT PRIMARY KEY,
        type TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        template TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL,
        state_reason TEXT NOT NULL DEFAULT '',
        create_time REAL NOT NULL,
        update_time REAL NOT NULL,
        start_time REAL,
        end_time REAL,
        queued_time REAL,
        current_step INTEGER NOT NULL DEFAULT 0,
        total_steps INTEGER NOT NULL DEFAULT 0,
        last_loss REAL,
        device TEXT NOT NULL DEFAULT '',
        resume_count INTEGER NOT NULL DEFAULT 0,
        resume_checkpoint TEXT NOT NULL DEFAULT '',
        best_checkpoint_id TEXT NOT NULL DEFAULT '',
        best_evaluation_id TEXT NOT NULL DEFAULT '',
        error TEXT NOT NULL DEFAULT '',
        failure_log_tail TEXT NOT NULL DEFAULT '[]',
        quota_estimate TEXT NOT NULL DEFAULT '{}',
        last_seq INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX tasks_state ON tasks(state);
    CREATE TABLE task_params (
        task_id TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (task_id, key)
    );
    CREATE TABLE task_events (
        task_id TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        time REAL NOT NULL,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        PRIMARY KEY (task_id, seq)
    );
    CREATE TABLE metrics (
        task_id TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        step INTEGER NOT NULL,
        time REAL NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (task_id, seq)
    );
    CREATE INDEX metrics_step ON metrics(task_id, step);
    CREATE TABLE checkpoints (
        id TEXT PRIMARY KEY,
        task_id TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
        step INTEGER NOT NULL,
        epoch REAL NOT NULL DEFAULT 0,
        loss REAL,
        path TEXT NOT NULL,
        size_bytes INTEGER NOT NULL DEFAULT 0,
        create_time REAL NOT NULL,
        deleted INTEGER NOT NULL DEFAULT 0,
        delete_time REAL
    );
    CREATE INDEX checkpoints_task ON checkpoints(task_id, step);
    CREATE TABLE templates (
        name TEXT PRIMARY KEY,
        type TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        params TEXT NOT NULL,
        create_time REAL NOT NULL,
        update_time REAL NOT NULL
    );
    CREATE TABLE quota_ledger (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time REAL NOT NULL,
        delta INTEGER NOT NULL,
        balance_after INTEGER NOT NULL,
        kind TEXT NOT NULL,
        task_id TEXT NOT NULL DEFAULT '',
        checkpoint_id TEXT NOT NULL DEFAULT '',
        note TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        task_id TEXT NOT NULL,
        state TEXT NOT NULL,
        state_reason TEXT NOT NULL DEFAULT '',
        request TEXT NOT NULL DEFAULT '{}',
        result TEXT NOT NULL DEFAULT '{}',
        create_time REAL NOT NULL,
        end_time REAL,
        last_seq INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX jobs_task ON jobs(kind, task_id);
    CREATE TABLE job_events (
        job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        time REAL NOT NULL,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        PRIMARY KEY (job_id, seq)
    );
    """,
    # 2: quota holds, a unit reserved for a checkpoint being written (store/checkpoints.py)
    """
    CREATE TABLE quota_holds (
        id TEXT PRIMARY KEY,
        task_id TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
        step INTEGER NOT NULL,
        time REAL NOT NULL
    );
    CREATE INDEX quota_holds_task ON quota_holds(task_id, step);
    """,
    # 3: the manifest of the files each task wrote (store/files.py): DeleteTask deletes exactly these
    """
    CREATE TABLE IF NOT EXISTS task_files (
        task_id TEXT NOT NULL,
        path TEXT NOT NULL,
        kind TEXT NOT NULL,
        dev INTEGER,
        ino INTEGER,
        source TEXT NOT NULL DEFAULT '',
        time REAL NOT NULL,
        PRIMARY KEY (task_id, path)
    );
    """,
    # 4: what a first run explains (issue 19): the data reports made at create, each parameter's source,
    # and after the run the learning check and the estimate next to the actuals (JSON each)
    """
    ALTER TABLE tasks ADD COLUMN train_data TEXT NOT NULL DEFAULT 'null';
    ALTER TABLE tasks ADD COLUMN eval_data TEXT NOT NULL DEFAULT 'null';
    ALTER TABLE tasks ADD COLUMN settings TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE tasks ADD COLUMN learning TEXT NOT NULL DEFAULT 'null';
    ALTER TABLE tasks ADD COLUMN estimate_checks TEXT NOT NULL DEFAULT '[]';
    """,
]


async def connect(path: Path) -> aiosqlite.Connection:
    """Open (creating if needed) and migrate the database.

    Whatever fails here closes the connection again: its thread is not a daemon thread, and a
    connection left open keeps a daemon that failed to start from ever exiting.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(str(path), isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise DatabaseUnusable(f"cannot open the database {path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        conn.row_factory = aiosqlite.Row
        try:
            await conn.execute("PRAGMA busy_timeout=5000")
            await conn.execute("PRAGMA journal_mode=WAL")
            await conn.execute("PRAGMA synchronous=NORMAL")
            await conn.execute("PRAGMA foreign_keys=ON")
            problems = await quick_check(conn)
        except sqlite3.DatabaseError as exc:  # "file is not a database", "malformed" ...
            problems = [str(exc)]
        if problems:
            raise DatabaseCorrupt(
                f"the database {path} is damaged ({'; '.join(problems[:3])}): modxd will not run on it; "
                "restore it from a backup, or move it away to start empty")
        try:
            await migrate(conn, path)
        except sqlite3.Error as exc:  # a read-only or full disk, an I/O error
            raise DatabaseUnusable(f"cannot bring the database {path} up to date: {exc}") from None
    except BaseException:
        await conn.close()
        raise
    return conn


class StoreWriteFailed(ModxError):
    """The disk refused a write (full, I/O error, read-only, locked by another program): nothing of it was
    stored, and the same write may succeed once the disk has room again (jobs/backlog.py retries)."""


class DatabaseFull(StoreWriteFailed, ResourceExhausted):
    pass


class DatabaseUnwritable(StoreWriteFailed, Unavailable):
    pass


# SQLite's primary result codes (the low byte of an extended one) that mean "the disk said no".
_SQLITE_FULL = 13
_SQLITE_DISK_REFUSALS = {5: "busy", 6: "locked", 8: "read-only", 10: "I/O error", 14: "cannot open"}


def write_failure(path: Path | None, exc: sqlite3.OperationalError) -> StoreWriteFailed | None:
    """The sentence for a write the disk refused; None for any other OperationalError (a bug)."""
    code = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
    where = f"its database {path}" if path else "its database"
    if code == _SQLITE_FULL:
        return DatabaseFull(f"disk full: the daemon cannot write {where} ({exc})")
    if code in _SQLITE_DISK_REFUSALS:
        return DatabaseUnwritable(f"the daemon cannot write {where} ({exc})")
    return None


class DatabaseUnusable(ModxError):
    """The database cannot be opened, read or brought up to date: modxd cannot start on it."""


class DatabaseCorrupt(DatabaseUnusable):
    """SQLite's own check found damage; running on would spread it."""


class DatabaseTooNew(DatabaseUnusable):
    """Written by a newer modxd: this one does not know its schema."""


async def quick_check(conn: aiosqlite.Connection) -> list[str]:
    """SQLite's quick_check (structure, not index contents: fast at start-up); [] when sound."""
    async with conn.execute("PRAGMA quick_check") as cur:
        rows = [str(r[0]) for r in await cur.fetchall()]
    return [] if rows == ["ok"] else rows


async def schema_version(conn: aiosqlite.Connection) -> int:
    async with conn.execute("PRAGMA user_version") as cur:
        row = await cur.fetchone()
    return int(row[0])


async def migrate(conn: aiosqlite.Connection, path: Path | str = "") -> int:
    version = await schema_version(conn)
    if version > len(MIGRATIONS):
        raise DatabaseTooNew(
            f"database schema version {version} is newer than this modxd knows ({len(MIGRATIONS)}): {path} was "
            "written by a newer modxd; upgrade modxd or restore the previous database")
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        await conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(script):
                await conn.execute(statement)
            await conn.execute(f"PRAGMA user_version = {number}")
            await conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                await conn.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)


async def integrity_ok(conn: aiosqlite.Connection) -> bool:
    async with conn.execute("PRAGMA integrity_check") as cur:
        row = await cur.fetchone()
    return row[0] == "ok"


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


class Database:
    """One connection, one writer at a time.

    aiosqlite runs statements on its own thread, but coroutines interleave at
    every await: without the lock two transactions would mix their statements.
    A write that the disk refuses (full, I/O error, read-only) is rolled back and raised as
    a StoreWriteFailed sentence naming the database; nothing of it is stored.
    """

    def __init__(self, conn: aiosqlite.Connection, path: Path | None = None) -> None:
        self.conn = conn
        self.path = path
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> "Database":
        return cls(await connect(path), path)

    async def close(self) -> None:
        async with self._lock:
            await self.conn.close()

    @contextlib.asynccontextmanager
    async def tx(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            try:
                await self.conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self.conn
                    await self.conn.execute("COMMIT")  # in WAL mode a full disk fails here
                except BaseException:
                    if self.conn.in_transaction:  # SQLite may have rolled back itself (a full disk): keep its error
                        await self.conn.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError as exc:
                failure = write_failure(self.path, exc)
                if failure is None:
                    raise
                raise failure from exc

    async def write(self, fn: Callable[..., R], *args: Any) -> R:
        """Run ``fn(connection, *args)`` as one transaction on the database's thread.

        One round trip to that thread instead of one per statement: every write that numbers an
        event goes through here (metrics points come tens a second), and each ``await
        conn.execute`` is a hand-off there and back (docs/benchmarks.md, "Daemon overhead"). ``fn`` is plain ``sqlite3`` code; it must not
        await or touch the event loop. This uses aiosqlite's ``_execute`` (run a callable on its
        thread), which it has no public name for; tests/daemon/test_store_write.py covers it.
        """
        def transaction() -> R:
            conn = self.conn._conn  # aiosqlite's sqlite3 connection, used only on its own thread
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn, *args)
                conn.execute("COMMIT")  # in WAL mode a full disk fails here
            except BaseException:
                if conn.in_transaction:  # SQLite may have rolled back itself (a full disk): keep its error
                    conn.execute("ROLLBACK")
                raise
            return result

        async with self._lock:
            try:
                return await self.conn._execute(transaction)
            except sqlite3.OperationalError as exc:
                failure = write_failure(self.path, exc)
                if failure is None:
                    raise
                raise failure from exc

    async def all(self, sql: str, args: Sequence[Any] = ()) -> list[aiosqlite.Row]:
        async with self.conn.execute(sql, args) as cur:
            return list(await cur.fetchall())

    async def one(self, sql: str, args: Sequence[Any] = ()) -> aiosqlite.Row | None:
        async with self.conn.execute(sql, args) as cur:
            return await cur.fetchone()
