"""LISTEN/NOTIFY as signals: whoever waits for the database to change is woken the moment
it does, instead of polling for it.

A :class:`Listener` keeps one connection listening on one channel and fires the
:class:`Signal` of each notification's payload (a run id). Waiters keep a short poll as a
fallback: while the connection is down (it reconnects by itself) nothing is lost but time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import psycopg

from golem_tasks.db.queries import queries

logger = logging.getLogger(__name__)

RECONNECT_S = 1.0


class Signal:
    """Counts notifications; a waiter remembers ``count`` before it looks at the database
    and then waits for it to change, so a notification between the two is not missed."""

    def __init__(self) -> None:
        self.count = 0
        self._event = asyncio.Event()

    def fire(self) -> None:
        self.count += 1
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, seen: int) -> None:
        """Return once a notification came after ``count`` was ``seen``."""
        if self.count == seen:
            await self._event.wait()


class Listener:
    """``async with Listener(dsn, "listen_pending") as listener: listener.signal(run_id)``.

    ``query`` names the LISTEN statement in ``db/sql``.
    """

    def __init__(self, dsn: str, query: str) -> None:
        self.dsn = dsn
        self.query = query
        self.listening = asyncio.Event()
        self._signals: dict[str, Signal] = {}
        self._task: asyncio.Task[None] | None = None

    def signal(self, payload: str) -> Signal:
        return self._signals.setdefault(payload, Signal())

    async def __aenter__(self) -> Listener:
        self._task = asyncio.create_task(self._listen(), name=f"listener-{self.query}")
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _fire_all(self) -> None:
        for signal in self._signals.values():
            signal.fire()

    async def _listen(self) -> None:
        lost = False  # said once per outage, not once per reconnection attempt
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
                async with conn:
                    await conn.execute(getattr(queries, self.query))
                    self.listening.set()
                    if lost:
                        logger.warning("%s: listening again", self.query)
                        lost = False
                    # Whatever happened while nobody listened: let every waiter look again.
                    self._fire_all()
                    async for notify in conn.notifies():
                        signal = self._signals.get(notify.payload)
                        if signal is not None:
                            signal.fire()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not lost:
                    logger.warning(
                        "%s: connection lost (%s); waiters poll meanwhile", self.query, exc
                    )
                else:
                    logger.debug("%s: still no connection (%s)", self.query, exc)
                lost = True
            self.listening.clear()
            await asyncio.sleep(RECONNECT_S)
