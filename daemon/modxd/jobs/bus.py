"""Fan-out of persisted events to live subscribers.

Each subscriber has a bounded queue. A subscriber that falls behind is marked
`lagging` and its queue is not fed any more: publishing never waits, so a slow
client can never stall training. The watcher then re-reads what it missed from
SQLite (events are persisted before they are published), which is why a
lagging subscriber still sees every event exactly once.
"""
from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any, Generic, Hashable, TypeVar

T = TypeVar("T")

DEFAULT_QUEUE_SIZE = 256
_timeout = getattr(asyncio, "timeout", None)  # 3.11+: no extra task per wait


_LAG = object()  # queued when the subscriber falls behind: "re-read the store"


class Subscription(Generic[T]):
    def __init__(self, bus: "EventBus[T]", topic: Hashable, maxsize: int) -> None:
        self.bus = bus
        self.topic = topic
        self.maxsize = maxsize
        # Unbounded as a data structure, bounded by offer(): at most maxsize items plus the lag marker.
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.lagging = False

    def offer(self, item: T) -> None:
        if self.lagging:
            return
        if self.queue.qsize() >= self.maxsize:
            self.lagging = True
            self.queue.put_nowait(_LAG)  # wakes a waiting next()
            return
        self.queue.put_nowait(item)

    async def next(self, timeout: float | None = None) -> T | None:
        """The next live item; None when lagging (re-read the store) or on timeout."""
        if self.lagging:
            return None
        if self.queue.empty():
            try:
                if _timeout is not None:
                    async with _timeout(timeout):
                        item = await self.queue.get()
                else:  # Python 3.10
                    item = await asyncio.wait_for(self.queue.get(), timeout)
            except (asyncio.TimeoutError, TimeoutError):
                return None
        else:
            item = self.queue.get_nowait()
        return None if item is _LAG else item

    def resync(self) -> None:
        """Drop what is queued and start receiving live items again (after a store re-read)."""
        while not self.queue.empty():
            self.queue.get_nowait()
        self.lagging = False

    def close(self) -> None:
        self.bus._remove(self)

    def __enter__(self) -> "Subscription[T]":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class EventBus(Generic[T]):
    def __init__(self, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self.queue_size = queue_size
        self._subs: dict[Hashable, set[Subscription[T]]] = defaultdict(set)

    def subscribe(self, topic: Hashable) -> Subscription[T]:
        sub: Subscription[T] = Subscription(self, topic, self.queue_size)
        self._subs[topic].add(sub)
        return sub

    def publish(self, topic: Hashable, item: T) -> None:
        for sub in list(self._subs.get(topic, ())):
            sub.offer(item)

    def subscriber_count(self, topic: Hashable | None = None) -> int:
        if topic is not None:
            return len(self._subs.get(topic, ()))
        return sum(len(s) for s in self._subs.values())

    def _remove(self, sub: Subscription[T]) -> None:
        subs = self._subs.get(sub.topic)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.topic]
