"""Feeding the app's tasks into the database ahead of demand, in a bounded window.

``get_tasks`` may be endless, so only ``window`` pending tasks are kept in the table at a
time. Keys make feeding idempotent: after a restart the iterable is walked again from the
start and tasks already stored are skipped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from psycopg_pool import AsyncConnectionPool

from golem_tasks import taskstore
from golem_tasks.appmodule import App, CallableTasks, describe_callable
from golem_tasks.db import access
from golem_tasks.errors import UserError
from golem_tasks.taskstore import NewTask

logger = logging.getLogger(__name__)

CHUNK = 500


class Feeder:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        run_id: str,
        app: App,
        *,
        window: int,
        callables: CallableTasks | None = None,
        poll_s: float = 0.5,
    ) -> None:
        self.pool = pool
        self.run_id = run_id
        self.app = app
        self.window = window
        self.callables = callables
        self.poll_s = poll_s
        #: Set once every task stored by an earlier supervisor has been walked again (so
        #: callable tasks are registered before any worker may claim them).
        self.replayed = asyncio.Event()
        self.exhausted = asyncio.Event()
        self.fed = 0

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
            taskstore.check_json(item, f"task #{position} from get_tasks()")
        except ValueError as exc:
            raise UserError(f"app {self.app.spec}: {exc}") from None
        return NewTask(taskstore.task_key(item, position), position, item)

    async def _take(self, items: AsyncIterator[Any], position: int, count: int) -> list[NewTask]:
        batch: list[NewTask] = []
        while len(batch) < count:
            try:
                item = await items.__anext__()
            except StopAsyncIteration:
                break
            batch.append(self._task(item, position + len(batch)))
        return batch

    async def _store(self, batch: list[NewTask]) -> int:
        async with self.pool.connection() as conn:
            return await taskstore.feed(
                conn,
                self.run_id,
                batch,
                max_attempts=self.app.max_attempts,
                timeout_s=self.app.task_timeout_s,
            )

    async def run(self) -> None:
        """Keep up to ``window`` pending tasks stored until ``get_tasks`` is exhausted."""
        items: AsyncIterator[Any] = self.app.iterate_tasks(self.run_id).__aiter__()
        async with self.pool.connection() as conn:
            known_until = await taskstore.max_position(conn, self.run_id)
        position = 0
        # Walk what an earlier supervisor stored, in large batches: known keys add nothing.
        while position <= known_until:
            batch = await self._take(items, position, min(CHUNK, known_until + 1 - position))
            self.fed += await self._store(batch)
            position += len(batch)
            if len(batch) == 0:
                break
        self.replayed.set()
        while True:
            async with self.pool.connection() as conn:
                room = self.window - await taskstore.pending_count(conn, self.run_id)
            if room <= 0:
                await asyncio.sleep(self.poll_s)
                continue
            batch = await self._take(items, position, min(room, CHUNK))
            position += len(batch)
            self.fed += await self._store(batch)
            if len(batch) < min(room, CHUNK):
                async with self.pool.connection() as conn:
                    await access.execute(conn, "set_feed_done", run_id=self.run_id, done=True)
                logger.info("get_tasks() exhausted after %d tasks", position)
                self.exhausted.set()
                return
