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

    async def _pending(self) -> int:
        async with self.pool.connection() as conn:
            return (await taskstore.counts(conn, self.run_id)).pending

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
        position = 0
        while True:
            room = self.window - await self._pending()
            if room <= 0:
                await asyncio.sleep(self.poll_s)
                continue
            batch: list[NewTask] = []
            exhausted = False
            # Walk until `room` new tasks are found: known keys (after a restart) cost nothing.
            while len(batch) < min(room, CHUNK):
                try:
                    item = await items.__anext__()
                except StopAsyncIteration:
                    exhausted = True
                    break
                batch.append(self._task(item, position))
                position += 1
            added = await self._store(batch)
            self.fed += added
            if exhausted:
                async with self.pool.connection() as conn:
                    await access.execute(conn, "set_feed_done", run_id=self.run_id, done=True)
                logger.info("get_tasks() exhausted after %d tasks", position)
                self.exhausted.set()
                return
            if added == 0 and batch:
                continue  # all known already: keep walking without waiting
            await asyncio.sleep(0 if added < room else self.poll_s)
