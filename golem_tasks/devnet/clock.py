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
import time
from datetime import datetime, timedelta, timezone


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

    @staticmethod
    def monotonic() -> float:
        return time.monotonic()

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
        """The monotonic instant at which a client's absolute deadline falls due.

        ``set_at`` is when the client stated the deadline; the remaining span is
        compressed by ``scale``.
        """
        span = (target - set_at).total_seconds()
        elapsed = (self.now() - set_at).total_seconds()
        remaining = self.real_seconds(span) - max(0.0, elapsed)
        return self.monotonic() + max(0.0, remaining)


def isoformat(moment: datetime) -> str:
    """RFC 3339 with microseconds and ``Z``, as yagna writes timestamps."""
    text = moment.astimezone(timezone.utc).isoformat(timespec="microseconds")
    return text.replace("+00:00", "Z")


def parse_timestamp(text: str) -> datetime:
    """Parse an RFC 3339 timestamp from a query or body; naive values are taken as UTC.

    Raises ValueError on anything else. A ``+`` that arrived as a space (an unencoded
    query string) is repaired first.
    """
    cleaned = text.strip().replace(" ", "+")
    if cleaned.endswith(("Z", "z")):
        cleaned = cleaned[:-1] + "+00:00"
    moment = datetime.fromisoformat(cleaned)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment


def from_millis(value: float) -> datetime:
    """A Golem property timestamp (milliseconds since the epoch) as an aware datetime."""
    return datetime.fromtimestamp(value / 1000.0, timezone.utc)
