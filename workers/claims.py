"""Group commit for the drivers of one worker process: their results and claims are sent
to the database together, one statement per run for whatever is waiting, so that the
database path costs a round trip per batch rather than per task as load grows.

A driver that is alone waits exactly one round trip, as before; under load, requests
queue while a statement is in flight and go in the next one. A statement PostgreSQL
refuses (a result it cannot store) is run again one request at a time, so that the refusal
reaches only the driver whose request caused it; a database that is away fails every
request of the batch alike (each driver waits it out, and a failed statement changed
nothing).
"""

from __future__ import annotations

import asyncio
import logging

import psycopg

from golem_tasks.db.types import Pool
from golem_tasks.retry import is_transient
from golem_tasks.store import tasks
from golem_tasks.store.tasks import Claim, ClaimRequest

logger = logging.getLogger(__name__)

#: Statements in flight at once; more requests wait for the next one.
MAX_IN_FLIGHT = 2
DEADLOCK_ATTEMPTS = 3

Answer = tuple[bool, Claim | None]


class ClaimBatcher:
    def __init__(self, pool: Pool, lease_s: float) -> None:
        self.pool = pool
        self.lease_s = lease_s
        self._queue: list[tuple[str, ClaimRequest, asyncio.Future[Answer]]] = []
        self._free = MAX_IN_FLIGHT
        self._flushes: set[asyncio.Task[None]] = set()

    async def submit(self, run_id: str, request: ClaimRequest) -> Answer:
        """(the previous result was stored, the next claim), as
        :func:`tasks.claim_many` answers for this request."""
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._queue.append((run_id, request, future))
        self._dispatch()
        return await future

    def _dispatch(self) -> None:
        while self._queue and self._free > 0:
            self._free -= 1
            batch, self._queue = self._queue, []
            task = asyncio.create_task(self._flush(batch), name="claim-batch")
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)

    async def _flush(self, batch: list[tuple[str, ClaimRequest, asyncio.Future[Answer]]]) -> None:
        try:
            by_run: dict[str, list[tuple[ClaimRequest, asyncio.Future[Answer]]]] = {}
            for run_id, request, future in batch:
                if not future.cancelled():  # its driver is gone: claim nothing for it
                    by_run.setdefault(run_id, []).append((request, future))
            for run_id, items in by_run.items():
                try:
                    answers = await self._claim_many(run_id, [request for request, _ in items])
                except Exception as exc:
                    if len(items) > 1 and not is_transient(exc):
                        logger.info("claim statement refused (%s); one request at a time", exc)
                        for item in items:
                            await self._alone(run_id, *item)
                        continue
                    for _, future in items:
                        _answer(future, error=exc)
                    continue
                for (_, future), answer in zip(items, answers, strict=True):
                    _answer(future, answer)
        finally:
            self._free += 1
            self._dispatch()

    async def _alone(
        self, run_id: str, request: ClaimRequest, future: asyncio.Future[Answer]
    ) -> None:
        try:
            [answer] = await self._claim_many(run_id, [request])
        except Exception as exc:
            _answer(future, error=exc)
        else:
            _answer(future, answer)

    async def _claim_many(self, run_id: str, requests: list[ClaimRequest]) -> list[Answer]:
        """A deadlock (with another process's multi-row update) rolled the statement back
        entirely: it is safe to run again, and one failure must not break every driver
        of the batch."""
        for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
            try:
                async with self.pool.connection() as conn:
                    return await tasks.claim_many(conn, run_id, requests, self.lease_s)
            except psycopg.errors.DeadlockDetected:
                if attempt == DEADLOCK_ATTEMPTS:
                    raise
                logger.info("claim statement deadlocked (attempt %d); running it again", attempt)
        raise AssertionError("unreachable")


def _answer(
    future: asyncio.Future[Answer], answer: Answer | None = None, error: Exception | None = None
) -> None:
    """Hand a driver its answer, unless it stopped waiting for it."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        assert answer is not None
        future.set_result(answer)
