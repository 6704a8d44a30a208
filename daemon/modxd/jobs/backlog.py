"""Store writes that the disk refused while a worker ran or ended, kept in order and retried.

A full state-dir disk (or an I/O error) makes a database write fail in the middle of a run. Dropping
the write would lose an event, or leave a task `running` with no worker; raising would kill the
coroutine that follows the worker. Instead the write waits here, behind any earlier write of the
same owner (a task or a job), and every later write of that owner queues behind it, so what lands
is in the order it happened. A retry loop tries the waiting writes every few seconds until the
disk takes them (an operator freed space). Until then nothing new should start: `empty` says so.

Writes a client asked for (start, stop, resume, delete) are not queued: `now` raises the sentence
instead, so the client learns at once and nothing changes.
"""
from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Awaitable, Callable

import structlog

from ..store.db import StoreWriteFailed

log = structlog.get_logger("modxd.backlog")

Write = Callable[[], Awaitable[Any]]
RETRY_SECONDS = 2.0


class Backlog:
    def __init__(self, retry_seconds: float = RETRY_SECONDS) -> None:
        self.retry_seconds = retry_seconds
        self._waiting: dict[str, deque[Write]] = {}
        self._errors: dict[str, StoreWriteFailed] = {}  # the first refusal of each owner's current backlog
        self._lock = asyncio.Lock()  # one write at a time, so an owner's writes cannot overtake each other
        self._retrier: asyncio.Task | None = None
        self._stuck: list[Callable[[str, StoreWriteFailed], None]] = []
        self._drained: list[Callable[[], Awaitable[None]]] = []
        self._round = asyncio.Event()  # set (and replaced) after each retry round

    def on_stuck(self, callback: Callable[[str, StoreWriteFailed], None]) -> None:
        """Call `callback(owner, error)` when an owner's first write is refused (stop its worker)."""
        self._stuck.append(callback)

    def on_drained(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Await `callback()` each time the retries have landed every waiting write (start what waits)."""
        self._drained.append(callback)

    @property
    def empty(self) -> bool:
        return not self._waiting

    def waiting(self, owner: str) -> bool:
        return owner in self._waiting

    def error(self, owner: str) -> StoreWriteFailed | None:
        return self._errors.get(owner)

    async def write(self, owner: str, write: Write) -> tuple[bool, Any]:
        """Run `write` now, or queue it (behind `owner`'s waiting writes, or when the disk refuses it).

        Returns (True, its result) when it landed, (False, None) when it waits.
        """
        async with self._lock:
            if owner in self._waiting:
                self._waiting[owner].append(write)
                return False, None
            try:
                return True, await write()
            except StoreWriteFailed as exc:
                refused = exc
                self._waiting[owner] = deque([write])
                self._errors[owner] = exc
        log.warning("store_write_waits", owner=owner, error=str(refused))
        for callback in self._stuck:
            callback(owner, refused)
        if self._retrier is None or self._retrier.done():
            self._retrier = asyncio.create_task(self._retry(), name="store-backlog")
        return False, None

    async def now(self, owner: str, write: Write) -> Any:
        """Run `write` after `owner`'s waiting writes; raises StoreWriteFailed when any is refused."""
        async with self._lock:
            await self._flush(owner)
            return await write()

    async def settle(self, owner: str) -> None:
        """Land `owner`'s waiting writes now; raises StoreWriteFailed when the disk still refuses."""
        async with self._lock:
            await self._flush(owner)

    async def _flush(self, owner: str) -> None:
        queue = self._waiting.get(owner)
        while queue:
            try:
                await queue[0]()
            except StoreWriteFailed as exc:
                self._errors[owner] = exc
                raise
            except Exception:  # it can never land (a bug, or the owner was deleted): do not block the rest
                log.exception("store_write_dropped", owner=owner)
            queue.popleft()
        if queue is not None:
            del self._waiting[owner]
            self._errors.pop(owner, None)
            log.info("store_writes_landed", owner=owner)

    async def _retry(self) -> None:
        while self._waiting:
            await asyncio.sleep(self.retry_seconds)
            async with self._lock:
                for owner in list(self._waiting):
                    try:
                        await self._flush(owner)
                    except StoreWriteFailed:
                        break  # the disk still refuses: try everything again later
            done, self._round = self._round, asyncio.Event()
            done.set()
            if not self._waiting:
                for callback in self._drained:
                    try:
                        await callback()
                    except Exception:
                        log.exception("store_drained_callback_failed")

    async def landed(self, owner: str) -> None:
        """Wait until nothing of `owner` waits any more."""
        while owner in self._waiting:
            await self._round.wait()

    async def close(self) -> None:
        """The daemon stops: one last try, then what still waits is lost, and the log says so (the next
        start marks a task it left running as failed, daemon_restarted)."""
        if self._retrier is not None:
            self._retrier.cancel()
        async with self._lock:
            for owner in list(self._waiting):
                try:
                    await self._flush(owner)
                except StoreWriteFailed:
                    pass
        for owner, queue in self._waiting.items():
            log.error("store_writes_lost", owner=owner, writes=len(queue), error=str(self._errors.get(owner)))
