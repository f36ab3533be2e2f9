"""The devnet's clock: real wall time for timestamps, compressible time for waiting.

Tests cannot wait ten minutes for a debit note, so every *duration* the devnet waits out
(debit-note intervals, acceptance deadlines, demand and agreement expirations) is divided
by ``scale``. Timestamps the devnet reports stay real UTC wall time, because clients
compare them with their own clock (``afterTimestamp`` filters, validation of debit notes).
An absolute deadline a client sets (an expiration ``T`` sent at real time ``t0``) is
therefore reached after ``(T - t0) / scale`` real seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

#: Timestamps a client may send: anything else is refused (400) rather than risking an
#: overflow in date arithmetic or formatting later.
MIN_YEAR = 1970
MAX_YEAR = 9000
_LATEST = datetime(MAX_YEAR, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)


class Clock:
    """Wall time plus a speed factor for everything the devnet waits for."""

    def __init__(self, scale: float = 1.0) -> None:
        if scale <= 0:
            raise ValueError("time scale must be above 0")
        self.scale = float(scale)
        self._last_event = datetime.min.replace(tzinfo=timezone.utc)

    @staticmethod
    def now() -> datetime:
        """Real UTC wall time, timezone-aware."""
        return datetime.now(timezone.utc)

    def event_time(self) -> datetime:
        """Wall time, strictly increasing across calls.

        Event logs are read with ``afterTimestamp`` (strictly later); two events sharing a
        microsecond would let a client that saw one of them skip the other.
        """
        now = self.now()
        if now <= self._last_event:
            now = self._last_event + timedelta(microseconds=1)
        self._last_event = now
        return now

    def real_seconds(self, devnet_seconds: float) -> float:
        """How long ``devnet_seconds`` of simulated time lasts in real time."""
        return max(0.0, devnet_seconds) / self.scale

    async def sleep(self, devnet_seconds: float) -> None:
        """Wait out a simulated duration."""
        await asyncio.sleep(self.real_seconds(devnet_seconds))

    def deadline(self, target: datetime, set_at: datetime) -> float:
        """The event-loop instant (``loop.time()``) at which a client's absolute deadline
        falls due.

        ``set_at`` is when the client stated the deadline; the remaining span is
        compressed by ``scale``.
        """
        span = (target - set_at).total_seconds()
        elapsed = (self.now() - set_at).total_seconds()
        remaining = self.real_seconds(span) - max(0.0, elapsed)
        return asyncio.get_running_loop().time() + max(0.0, remaining)


class Timers:
    """The timer handles one part of the devnet has pending, so that closing it cancels them.

    A handle is forgotten once it fires, so the set only holds what is still to come.
    """

    def __init__(self) -> None:
        self._handles: set[asyncio.Handle] = set()

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> asyncio.Handle:
        return self._keep(
            lambda fire: asyncio.get_running_loop().call_at(when, fire), callback, args
        )

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> asyncio.Handle:
        return self._keep(
            lambda fire: asyncio.get_running_loop().call_later(delay, fire), callback, args
        )

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> asyncio.Handle:
        return self._keep(lambda fire: asyncio.get_running_loop().call_soon(fire), callback, args)

    def _keep(
        self,
        schedule: Callable[[Callable[[], None]], asyncio.Handle],
        callback: Callable[..., Any],
        args: tuple[Any, ...],
    ) -> asyncio.Handle:
        handle: asyncio.Handle | None = None

        def fire() -> None:
            if handle is not None:
                self._handles.discard(handle)
            callback(*args)

        handle = schedule(fire)
        self._handles.add(handle)
        return handle

    def cancel(self, handle: asyncio.Handle | None) -> None:
        if handle is not None:
            handle.cancel()
            self._handles.discard(handle)

    def cancel_all(self) -> None:
        for handle in self._handles:
            handle.cancel()
        self._handles.clear()

    def __len__(self) -> int:
        return len(self._handles)


def isoformat(moment: datetime) -> str:
    """RFC 3339 with microseconds and ``Z``, as yagna writes timestamps."""
    text = moment.astimezone(timezone.utc).isoformat(timespec="microseconds")
    return text.replace("+00:00", "Z")


def parse_timestamp(text: str) -> datetime:
    """Parse an RFC 3339 timestamp from a query or body, as an aware UTC datetime.

    Naive values are taken as UTC. Raises ValueError on anything else, and on moments
    outside the years ``MIN_YEAR``..``MAX_YEAR`` (in UTC). A ``+`` that arrived as a space
    (an unencoded query string) is repaired first.
    """
    cleaned = text.strip().replace(" ", "+")
    if cleaned.endswith(("Z", "z")):
        cleaned = cleaned[:-1] + "+00:00"
    moment = datetime.fromisoformat(cleaned)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    try:
        moment = moment.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError(f"timestamp out of range: {text!r}") from None
    if not MIN_YEAR <= moment.year <= MAX_YEAR:
        raise ValueError(f"timestamp out of range (years {MIN_YEAR}-{MAX_YEAR}): {text!r}")
    return moment


def after(moment: datetime, seconds: float) -> datetime:
    """``moment`` plus ``seconds``, saturating at the latest timestamp the devnet writes."""
    try:
        return min(moment + timedelta(seconds=seconds), _LATEST)
    except (OverflowError, ValueError):
        return _LATEST
