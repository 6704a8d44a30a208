"""Fan-out of persisted events to live subscribers.

Each subscriber has a bounded queue. A subscriber that falls behind is marked
`lagging` and its queue is not fed any more: publishing never waits, so a slow
client can never stall training. The watcher then re-reads what it missed from
SQLite (events are persisted before they are published), which is why a
lagging subscriber still sees every event exactly once.
"""
from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from typing import Any, Generic, Hashable, TypeVar

T = TypeVar("T")

DEFAULT_QUEUE_SIZE = 256


class Subscription(Generic[T]):
    """One watcher's live feed: a bounded deque, the watcher's waiting future, a lazy timer.

    One event reaches every watcher of a task, so this is the per-watcher cost of each event
    (docs/benchmarks.md, "Metric delivery"): an append and, when the watcher waits, one
    future. The quiet-spell timeout is one timer per subscription that is re-armed only when
    it fires early, not a timer scheduled and cancelled around every wait.
    """

    def __init__(self, bus: "EventBus[T]", topic: Hashable, maxsize: int) -> None:
        self.bus = bus
        self.topic = topic
        self.maxsize = maxsize
        self.items: deque[T] = deque()
        self.lagging = False
        self._waiter: asyncio.Future[None] | None = None
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def offer(self, item: T) -> None:
        if self.lagging:
            return
        if len(self.items) >= self.maxsize:
            self.lagging = True  # next() says "re-read the store" from now on
            self.items.clear()
        else:
            self.items.append(item)
        self._wake()

    def _expire(self) -> None:
        self._timer = None
        if self._waiter is None or self._waiter.done():
            return
        loop = self._waiter.get_loop()
        if loop.time() >= self._deadline:
            self._waiter.set_result(None)
        else:  # armed for an earlier wait that ended: follow the current one
            self._timer = loop.call_at(self._deadline, self._expire)

    async def next(self, timeout: float | None = None) -> T | None:
        """The next live item; None when lagging (re-read the store) or on timeout."""
        if not self.items and not self.lagging:
            loop = asyncio.get_running_loop()
            self._waiter = waiter = loop.create_future()
            if timeout is not None:
                self._deadline = loop.time() + timeout
                if self._timer is None:
                    self._timer = loop.call_at(self._deadline, self._expire)
                elif self._timer.when() > self._deadline:  # a shorter timeout than the armed one
                    self._timer.cancel()
                    self._timer = loop.call_at(self._deadline, self._expire)
            try:
                await waiter
            finally:
                self._waiter = None
        if self.lagging or not self.items:
            return None
        return self.items.popleft()

    def resync(self) -> None:
        """Drop what is queued and start receiving live items again (after a store re-read)."""
        self.items.clear()
        self.lagging = False

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
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
