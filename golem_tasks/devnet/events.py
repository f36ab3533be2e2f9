"""Long-poll building blocks: a wake-up signal, a consumable queue and a timestamped log.

yagna's event endpoints hold a request until something happens or the timeout passes.
These primitives do that without a task per waiter, so thousands of idle polls cost little.
"""

from __future__ import annotations

import asyncio
import bisect
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any


class Signal:
    """Wakes every current waiter once; later waiters wait for the next fire."""

    __slots__ = ("_future",)

    def __init__(self) -> None:
        self._future: asyncio.Future[None] | None = None

    def fire(self) -> None:
        future, self._future = self._future, None
        if future is not None and not future.done():
            future.set_result(None)

    async def wait(self, timeout: float) -> None:
        """Return when fired or after ``timeout`` seconds, whichever is first."""
        if timeout <= 0:
            return
        if self._future is None:
            self._future = asyncio.get_running_loop().create_future()
        await asyncio.wait((self._future,), timeout=timeout)


async def wait_until(
    ready: Callable[[], bool], signal: Signal, timeout: float, loop_time: Callable[[], float]
) -> bool:
    """Wait until ``ready()`` is true (re-checked on every fire) or ``timeout`` passes."""
    deadline = loop_time() + max(0.0, timeout)
    while not ready():
        remaining = deadline - loop_time()
        if remaining <= 0:
            return False
        await signal.wait(remaining)
    return True


#: Most unread events a queue holds (the oldest are dropped beyond it).
MAX_QUEUED_EVENTS = 10_000


class EventQueue:
    """Events read once: a market subscription's proposal events."""

    def __init__(self) -> None:
        self._items: deque[dict[str, Any]] = deque(maxlen=MAX_QUEUED_EVENTS)
        self.signal = Signal()

    def put(self, event: dict[str, Any]) -> None:
        self._items.append(event)
        self.signal.fire()

    def __len__(self) -> int:
        return len(self._items)

    def take(self, max_events: int) -> list[dict[str, Any]]:
        taken: list[dict[str, Any]] = []
        while self._items and len(taken) < max_events:
            taken.append(self._items.popleft())
        return taken


@dataclass(frozen=True)
class LoggedEvent:
    date: datetime
    session: str | None
    body: dict[str, Any]


#: Most events one log keeps, whatever their age.
MAX_LOGGED_EVENTS = 100_000


class EventLog:
    """Events read by time: payment and agreement events.

    Events are appended in increasing ``date`` order (the clock guarantees it), so a reader
    finds its starting point by bisection. Old events are dropped by :meth:`prune`.
    """

    def __init__(self) -> None:
        self._events: list[LoggedEvent] = []
        self._dates: list[datetime] = []
        self.signal = Signal()

    def append(self, date: datetime, session: str | None, body: dict[str, Any]) -> None:
        self._events.append(LoggedEvent(date, session, body))
        self._dates.append(date)
        self.signal.fire()

    def prune(self, before: datetime, keep: int = MAX_LOGGED_EVENTS) -> int:
        """Drop events dated before ``before``, and the oldest beyond ``keep``."""
        cut = max(bisect.bisect_left(self._dates, before), len(self._events) - keep)
        if cut > 0:
            del self._events[:cut]
            del self._dates[:cut]
        return max(cut, 0)

    def __len__(self) -> int:
        return len(self._events)

    def select(
        self, after: datetime | None, session: str | None, max_events: int
    ) -> list[dict[str, Any]]:
        """Events strictly after ``after`` for ``session`` (any session when None)."""
        start = 0 if after is None else bisect.bisect_right(self._dates, after)
        found: list[dict[str, Any]] = []
        for event in self._events[start:]:
            if session is None or event.session == session:
                found.append(event.body)
                if len(found) >= max_events:
                    break
        return found

    async def poll(
        self,
        after: datetime | None,
        session: str | None,
        max_events: int,
        timeout: float,
    ) -> list[dict[str, Any]]:
        """Like :meth:`select`, holding the call up to ``timeout`` seconds for new events."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout)
        while True:
            found = self.select(after, session, max_events)
            remaining = deadline - loop.time()
            if found or remaining <= 0:
                return found
            await self.signal.wait(remaining)
