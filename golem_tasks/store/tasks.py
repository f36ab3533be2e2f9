"""Tasks: the task table's life cycle (feed, claim, finish, give back) and its counts.

Exactly-once results: a claim is (task, activity, attempt); the result is stored in the
transaction that ends the claim, and only if the claim is still the current one, so a late
or duplicate completion is discarded rather than counted twice.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb

from golem_tasks.db import access
from golem_tasks.db.types import Connection, Row
from golem_tasks.errors import storable
from golem_tasks.store import errors
from golem_tasks.store.records import TaskStatus

logger = logging.getLogger(__name__)

#: A claim lives this long without renewal; workers renew it every few seconds.
DEFAULT_LEASE_S = 30.0


@dataclass(frozen=True)
class NewTask:
    key: str
    position: int
    data: Any


@dataclass(frozen=True)
class Claim:
    run_id: str
    activity_id: str
    task_id: int
    key: str
    data: Any
    attempt: int
    max_attempts: int
    timeout_s: float | None


@dataclass(frozen=True)
class TaskCounts:
    pending: int = 0
    claimed: int = 0
    done: int = 0
    failed: int = 0
    total: int = 0
    #: Of ``total``, the tasks that an app's ``on_result`` added.
    follow_ups: int = 0

    @property
    def open(self) -> int:
        """Tasks that still need work."""
        return self.pending + self.claimed


def task_key(data: Any, position: int) -> str:
    """A task's own ``id`` when it has one, else its position in ``get_tasks``."""
    if isinstance(data, dict) and "id" in data:
        return str(data["id"])
    return str(position)


def follow_up_key(parent_key: str, data: Any, index: int) -> str:
    """A follow-up's key: under its parent's, by its own ``id`` or else its index, so the
    same completion stored twice (or replayed after a crash) yields the same keys."""
    return f"{parent_key}/{task_key(data, index)}"


def check_json(data: Any, what: str) -> Any:
    """Refuse values PostgreSQL's jsonb would not store as the app gave them."""
    try:
        json.dumps(data, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} is not JSON-serialisable: {exc}") from None
    found = _unstorable(data)
    if found is not None:
        where, problem = found
        raise ValueError(
            f"{what} has {problem} in {where or 'it'}, which PostgreSQL's jsonb cannot store"
        )
    return data


_SURROGATES = re.compile("[\ud800-\udfff]")


def _unstorable(data: Any) -> tuple[str, str] | None:
    """Where a string (or key) of JSON ``data`` holds what jsonb refuses, and what."""
    stack: list[tuple[Any, str]] = [(data, "")]
    while stack:
        value, where = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return where, "a NUL character (\\u0000)"
            if _SURROGATES.search(value):
                return where, "a lone UTF-16 surrogate"
        elif isinstance(value, dict):
            for key, item in value.items():
                stack.append((item, f"{where}[{key!r}]"))
                if isinstance(key, str):
                    stack.append((key, f"the key {key!r} of {where or 'it'}"))
        elif isinstance(value, (list, tuple)):
            stack.extend((item, f"{where}[{n}]") for n, item in enumerate(value))
    return None


async def feed(
    conn: Connection,
    run_id: str,
    tasks: Sequence[NewTask],
    *,
    max_attempts: int,
    timeout_s: float | None,
) -> int:
    """Insert tasks not yet known by key; return how many were new."""
    if not tasks:
        return 0
    return await access.execute(
        conn,
        "insert_tasks",
        run_id=run_id,
        keys=[t.key for t in tasks],
        positions=[t.position for t in tasks],
        datas=[Jsonb(t.data) for t in tasks],
        max_attempts=max_attempts,
        timeout_s=timeout_s,
    )


async def set_feed_wake_at(conn: Connection, run_id: str, position: int | None) -> None:
    """Ask to be notified (channel ``golem_tasks_feed``) once the task at ``position`` is
    claimed; ``None`` asks nothing."""
    await access.execute(conn, "set_feed_wake_at", run_id=run_id, position=position)


async def max_position(conn: Connection, run_id: str) -> int:
    row = await access.the_row(conn, "max_position", run_id=run_id)
    return int(row["position"])


async def pending_count(conn: Connection, run_id: str) -> int:
    """Pending tasks only: cheap even when millions are done."""
    row = await access.the_row(conn, "pending_count", run_id=run_id)
    return int(row["pending"])


async def open_count(conn: Connection, run_id: str) -> int:
    """Pending and claimed tasks: what still needs work."""
    row = await access.the_row(conn, "open_count", run_id=run_id)
    return int(row["open"])


async def counts(conn: Connection, run_id: str) -> TaskCounts:
    row = await access.the_row(conn, "task_counts", run_id=run_id)
    return TaskCounts(**{k: int(v) for k, v in row.items()})


@dataclass(frozen=True)
class ClaimRequest:
    """What one activity asks of :func:`claim_many`: store the result of its ``previous``
    claim (if any), then claim its next task (if ``claim_next``)."""

    activity_id: str
    previous: Claim | None = None
    result: Any = None
    batch_ids: Sequence[str] = ()
    claim_next: bool = True


async def claim(
    conn: Connection, run_id: str, activity_id: str, lease_s: float = DEFAULT_LEASE_S
) -> Claim | None:
    """Take the next pending task for ``activity_id``; ``None`` when there is none."""
    [(_, claimed)] = await claim_many(conn, run_id, [ClaimRequest(activity_id)], lease_s)
    return claimed


async def complete_and_claim(
    conn: Connection,
    claim: Claim,
    result: Any,
    batch_ids: Sequence[str] = (),
    *,
    lease_s: float = DEFAULT_LEASE_S,
    claim_next: bool = True,
) -> tuple[bool, Claim | None]:
    """:func:`complete`, then claim the activity's next task, in one statement (one round
    trip per task). Returns (stored, next claim); ``stored`` is False for a stale claim."""
    request = ClaimRequest(claim.activity_id, claim, result, batch_ids, claim_next)
    [answer] = await claim_many(conn, claim.run_id, [request], lease_s)
    return answer


async def claim_many(
    conn: Connection,
    run_id: str,
    requests: Sequence[ClaimRequest],
    lease_s: float = DEFAULT_LEASE_S,
) -> list[tuple[bool, Claim | None]]:
    """Serve several activities of one run in one statement: for each request, in order,
    (its result was stored, its next claim). Activities must be distinct."""
    previous = [r.previous for r in requests]
    params = {
        "run_id": run_id,
        "lease_s": lease_s,
        "task_ids": [p.task_id if p else None for p in previous],
        "activity_ids": [r.activity_id for r in requests],
        "attempts": [p.attempt if p else None for p in previous],
        "results": [Jsonb(r.result) if r.previous else None for r in requests],
        "claim_next": [r.claim_next for r in requests],
        "batch_task_ids": [r.previous.task_id for r in requests if r.previous for _ in r.batch_ids],
        "batch_ids": [b for r in requests if r.previous for b in r.batch_ids],
    }
    if conn.autocommit:  # one statement is its own transaction: no BEGIN/COMMIT round trips
        rows = await access.all_rows(conn, "claim_task", **params)
    else:
        async with conn.transaction():
            rows = await access.all_rows(conn, "claim_task", **params)
    done = {row["id"] for row in rows if row["kind"] == "done"}
    claimed = {row["activity_id"]: row for row in rows if row["kind"] == "claimed"}
    answers = []
    for request in requests:
        stored = request.previous is not None and request.previous.task_id in done
        if request.previous is not None and not stored:
            _discarding(request.previous)
        row = claimed.get(request.activity_id)
        answers.append((stored, _claim_from(row, run_id) if row else None))
    return answers


def _claim_from(row: Row, run_id: str) -> Claim:
    return Claim(
        run_id=run_id,
        activity_id=row["activity_id"],
        task_id=row["id"],
        key=row["key"],
        data=row["data"],
        attempt=row["attempts"],
        max_attempts=row["max_attempts"],
        timeout_s=row["timeout_s"],
    )


def _discarding(claim: Claim) -> None:
    logger.warning(
        "discarding late result of task %s (attempt %s on %s): the claim has moved on",
        claim.key,
        claim.attempt,
        claim.activity_id,
    )


async def _store_batches(conn: Connection, claim: Claim, batch_ids: Sequence[str]) -> None:
    if batch_ids:
        await access.execute(
            conn,
            "insert_batches",
            run_id=claim.run_id,
            activity_id=claim.activity_id,
            task_id=claim.task_id,
            attempt=claim.attempt,
            batch_ids=list(batch_ids),
        )


async def complete(
    conn: Connection,
    claim: Claim,
    result: Any,
    batch_ids: Sequence[str] = (),
    follow_ups: Sequence[Any] = (),
) -> bool:
    """Store the result and end the claim; ``False`` (nothing stored) for a stale claim.

    ``follow_ups`` (task data from the app's ``on_result``) are stored in the same
    transaction, so they exist exactly when the result that produced them does.
    """
    async with conn.transaction():
        stored = await access.execute(
            conn,
            "complete_task",
            task_id=claim.task_id,
            activity_id=claim.activity_id,
            attempt=claim.attempt,
            result=Jsonb(result),
        )
        if stored != 1:
            _discarding(claim)
            return False
        await _store_batches(conn, claim, batch_ids)
        if follow_ups:
            await access.execute(
                conn,
                "insert_follow_ups",
                task_id=claim.task_id,
                keys=[follow_up_key(claim.key, d, i) for i, d in enumerate(follow_ups)],
                datas=[Jsonb(d) for d in follow_ups],
            )
    return True


async def fail(
    conn: Connection, claim: Claim, error: str, batch_ids: Sequence[str] = ()
) -> TaskStatus | None:
    """Record a failed attempt; return the task's new status (``None`` for a stale claim)."""
    async with conn.transaction():
        row = await access.one(
            conn,
            "fail_task_attempt",
            task_id=claim.task_id,
            activity_id=claim.activity_id,
            attempt=claim.attempt,
            error=storable(error),
        )
        if row is None:
            return None
        await _store_batches(conn, claim, batch_ids)
        await errors.record(
            conn,
            claim.run_id,
            source="worker",
            kind="task",
            message=f"task {claim.key} attempt {claim.attempt}: {error}",
            activity_id=claim.activity_id,
            task_id=claim.task_id,
        )
    return TaskStatus(row["status"])


async def renew_leases(
    conn: Connection, activity_ids: Sequence[str], lease_s: float = DEFAULT_LEASE_S
) -> None:
    if activity_ids:
        await access.execute(conn, "renew_leases", activity_ids=list(activity_ids), lease_s=lease_s)


async def release_activity(
    conn: Connection, activity_id: str, error: str, *, count_attempt: bool = True
) -> list[tuple[int, TaskStatus]]:
    """Give back every task the activity still holds (see the query for ``count_attempt``)."""
    rows = await access.all_rows(
        conn,
        "release_activity_claims",
        activity_id=activity_id,
        error=storable(error),
        count_attempt=count_attempt,
    )
    return [(row["id"], TaskStatus(row["status"])) for row in rows]


async def requeue_expired(conn: Connection, run_id: str) -> list[tuple[int, TaskStatus]]:
    """Free claims whose worker stopped renewing them."""
    rows = await access.all_rows(conn, "requeue_expired_claims", run_id=run_id)
    return [(row["id"], TaskStatus(row["status"])) for row in rows]


async def count_results_having(conn: Connection, run_id: str, field: str) -> int:
    """Done tasks whose result is an object with a non-null ``field``."""
    row = await access.the_row(conn, "count_results_having", run_id=run_id, field=field)
    return int(row["results"])


async def done_count(conn: Connection, run_id: str) -> int:
    row = await access.the_row(conn, "done_count", run_id=run_id)
    return int(row["done"])
