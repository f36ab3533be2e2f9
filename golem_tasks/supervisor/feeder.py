"""Feeding the app's tasks into the database ahead of demand, in a bounded window.

``get_tasks`` may be endless, so only ``window`` pending tasks are kept in the table at a
time. Keys make feeding idempotent: after a restart the iterable is walked again from the
start and tasks already stored are skipped.

Feeding is on demand: after each top-up the feeder asks to be woken (LISTEN/NOTIFY) when
the claims reach the middle of what it fed, so the window is refilled before it runs dry
however fast workers claim; a slow poll is only the fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from golem_tasks.appmodule import App, CallableTasks, describe_callable
from golem_tasks.db.listen import Listener
from golem_tasks.db.types import Connection, Pool
from golem_tasks.errors import UserError
from golem_tasks.retry import patiently
from golem_tasks.store import runs, tasks
from golem_tasks.store.tasks import NewTask

logger = logging.getLogger(__name__)

CHUNK = 500


class _Items:
    """Take any number of items from a stream of batches."""

    def __init__(self, batches: AsyncIterator[list[Any]]) -> None:
        self.batches = batches
        self.buffer: list[Any] = []
        self.ended = False

    async def take(self, count: int) -> list[Any]:
        while len(self.buffer) < count and not self.ended:
            try:
                self.buffer.extend(await self.batches.__anext__())
            except StopAsyncIteration:
                self.ended = True
        taken, self.buffer = self.buffer[:count], self.buffer[count:]
        return taken


class Feeder:
    def __init__(
        self,
        pool: Pool,
        run_id: str,
        app: App,
        *,
        window: int,
        callables: CallableTasks | None = None,
        poll_s: float = 0.5,
        wake: Listener | None = None,
    ) -> None:
        self.pool = pool
        self.run_id = run_id
        self.app = app
        self.window = window
        self.callables = callables
        self.poll_s = poll_s
        self.wake = wake
        #: Set once every task stored by an earlier supervisor has been walked again (so
        #: callable tasks are registered before any worker may claim them).
        self.replayed = asyncio.Event()

    def _task(self, item: Any, position: int) -> NewTask:
        if callable(item) and not isinstance(item, type):
            if self.callables is None:
                raise UserError(
                    f"app {self.app.spec}: get_tasks() yields callables, which only "
                    "`golem-tasks run` can execute (they stay in its process); yield "
                    "JSON data and define execute_task(activity, data) to use supervise/worker"
                )
            key = str(position)
            self.callables.add(self.run_id, key, item)
            return NewTask(key, position, describe_callable(item))
        try:
            tasks.check_json(item, f"task #{position} from get_tasks()")
        except ValueError as exc:
            raise UserError(f"app {self.app.spec}: {exc}") from None
        return NewTask(tasks.task_key(item, position), position, item)

    async def _take(self, items: _Items, position: int, count: int) -> list[NewTask]:
        return [self._task(item, position + n) for n, item in enumerate(await items.take(count))]

    async def _store(self, batch: list[NewTask]) -> None:
        async def store() -> None:
            async with self.pool.connection() as conn:
                await tasks.feed(
                    conn,
                    self.run_id,
                    batch,
                    max_attempts=self.app.max_attempts,
                    timeout_s=self.app.task_timeout_s,
                )

        await patiently(store, what="storing tasks")

    async def _read(self, query: Callable[[Connection], Awaitable[int]]) -> int:
        async def read() -> int:
            async with self.pool.connection() as conn:
                return await query(conn)

        return await patiently(read, what="counting tasks")

    async def run(self) -> None:
        """Keep up to ``window`` pending tasks stored until ``get_tasks`` is exhausted."""
        items = _Items(self.app.task_batches(self.run_id, CHUNK))
        known_until = await self._read(lambda conn: tasks.max_position(conn, self.run_id))
        position = 0
        # Walk what an earlier supervisor stored, in large batches: known keys add nothing.
        while position <= known_until:
            batch = await self._take(items, position, min(CHUNK, known_until + 1 - position))
            if not batch:
                break
            await self._store(batch)
            position += len(batch)
        self.replayed.set()
        signal = self.wake.signal(self.run_id) if self.wake else None
        while True:
            seen = signal.count if signal else 0
            pending = await self._read(lambda conn: tasks.pending_count(conn, self.run_id))
            room = min(self.window - pending, CHUNK)
            if room <= 0:
                if signal is None:
                    await asyncio.sleep(self.poll_s)
                else:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(signal.wait(seen), self.poll_s)
                continue
            batch = await self._take(items, position, room)
            await self._store(batch)
            position += len(batch)
            if len(batch) < room:

                async def done(conn: Connection) -> int:
                    await tasks.set_feed_wake_at(conn, self.run_id, None)
                    await runs.set_feed_done(conn, self.run_id, True)
                    return 0

                await self._read(done)
                logger.info("get_tasks() exhausted after %d tasks", position)
                return
            # Woken when half the window is claimed (at once if claims are already past it).
            await self._read(self._wake_at(position - 1 - self.window // 2))

    def _wake_at(self, position: int) -> Callable[[Connection], Awaitable[int]]:
        async def ask(conn: Connection) -> int:
            await tasks.set_feed_wake_at(conn, self.run_id, position)
            return 0

        return ask
