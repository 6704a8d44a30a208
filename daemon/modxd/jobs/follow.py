"""Replay-then-follow over a persisted, numbered event log.

Used by every Watch* RPC. Subscribing happens before the store is read, so an
event is either in the store read or in the live queue (or both: duplicates are
dropped by seq). A gap in the live sequence, a lagging subscriber or a quiet
spell sends the loop back to the store, which always has everything.
"""
from __future__ import annotations

from typing import AsyncIterator, Awaitable, Callable

from ..store.events import EventRecord
from .bus import Subscription

BATCH = 500


async def replay_and_follow(
    sub: Subscription[EventRecord],
    fetch_after: Callable[[int, int], Awaitable[list[EventRecord]]],
    finished: Callable[[int], Awaitable[bool]],
    is_final: Callable[[EventRecord], bool],
    after_seq: int = 0,
    history_only: bool = False,
    quiet_seconds: float = 5.0,
) -> AsyncIterator[EventRecord]:
    """Yield events with seq > after_seq in order, exactly once.

    `finished(last_seq)` says whether nothing more will come after last_seq;
    `is_final(event)` says whether a live event ends the stream.
    """
    last = after_seq
    while True:
        while True:
            batch = await fetch_after(last, BATCH)
            for event in batch:
                last = event.seq
                yield event
            if len(batch) < BATCH:
                break
        sub.resync()
        if history_only or await finished(last):
            return
        while True:
            event = await sub.next(timeout=quiet_seconds)
            if event is None or event.seq > last + 1:
                break  # lagging, quiet or a gap: the store has what we missed
            if event.seq <= last:
                continue
            last = event.seq
            yield event
            if is_final(event):
                return
