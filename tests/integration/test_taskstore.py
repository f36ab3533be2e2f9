"""The task table under real PostgreSQL concurrency: claims, exactly-once results, leases."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from golem_tasks.db.connect import connect, connection
from golem_tasks.store import tasks as taskstore
from golem_tasks.store.tasks import NewTask
from tests.helpers import make_run


def new_tasks(n: int, start: int = 0) -> list[NewTask]:
    return [NewTask(taskstore.task_key(i, i), i, {"n": i}) for i in range(start, start + n)]


async def test_feed_is_idempotent_by_key(installed_dsn: str) -> None:
    await make_run(installed_dsn)
    async with connection(installed_dsn, autocommit=True) as conn:
        assert await taskstore.feed(conn, "r1", new_tasks(10), max_attempts=3, timeout_s=5) == 10
        assert await taskstore.feed(conn, "r1", new_tasks(15), max_attempts=3, timeout_s=5) == 5
        counts = await taskstore.counts(conn, "r1")
        assert counts.total == 15 and counts.pending == 15
        assert await taskstore.max_position(conn, "r1") == 14


def test_task_key_prefers_own_id() -> None:
    assert taskstore.task_key({"id": 42, "x": 1}, 7) == "42"
    assert taskstore.task_key({"x": 1}, 7) == "7"
    assert taskstore.task_key("plain", 3) == "3"


async def test_claims_follow_feed_order_and_never_overlap(installed_dsn: str) -> None:
    await make_run(installed_dsn, activities=8)
    async with connection(installed_dsn, autocommit=True) as conn:
        await taskstore.feed(conn, "r1", new_tasks(200), max_attempts=3, timeout_s=None)

    claimed: list[int] = []

    async def claimer(activity_id: str) -> None:
        conn = await connect(installed_dsn, autocommit=True)
        async with conn:
            while (claim := await taskstore.claim(conn, "r1", activity_id)) is not None:
                claimed.append(claim.data["n"])
                assert await taskstore.complete(conn, claim, {"ok": claim.data["n"]})

    await asyncio.gather(*(claimer(f"act{n}") for n in range(8)))
    assert sorted(claimed) == list(range(200))
    async with connection(installed_dsn) as conn:
        counts = await taskstore.counts(conn, "r1")
    assert counts.done == 200 and counts.open == 0


async def test_late_completion_is_discarded(installed_dsn: str) -> None:
    a, b = await make_run(installed_dsn)
    async with connection(installed_dsn, autocommit=True) as conn:
        await taskstore.feed(conn, "r1", new_tasks(1), max_attempts=3, timeout_s=None)
        first = await taskstore.claim(conn, "r1", a, lease_s=0.01)
        assert first is not None
        await asyncio.sleep(0.05)
        assert await taskstore.requeue_expired(conn, "r1") == [(first.task_id, "pending")]
        second = await taskstore.claim(conn, "r1", b)
        assert second is not None
        assert second.attempt == 2
        # The first worker comes back late: its result must not count.
        assert await taskstore.complete(conn, first, {"from": "a"}) is False
        assert await taskstore.fail(conn, first, "late failure") is None
        assert await taskstore.complete(conn, second, {"from": "b"}) is True
        assert await taskstore.complete(conn, second, {"from": "b", "again": 1}) is False
        row = await (await conn.execute("SELECT * FROM tasks.task")).fetchone()
        assert row is not None
    assert row["status"] == "done" and row["result"] == {"from": "b"} and row["activity_id"] == b


async def test_failed_attempts_requeue_then_fail_for_good(installed_dsn: str) -> None:
    (a, _) = await make_run(installed_dsn)
    async with connection(installed_dsn, autocommit=True) as conn:
        await taskstore.feed(conn, "r1", new_tasks(1), max_attempts=2, timeout_s=None)
        claim = await taskstore.claim(conn, "r1", a)
        assert claim is not None
        assert await taskstore.fail(conn, claim, "boom 1", ["batch-1"]) == "pending"
        claim = await taskstore.claim(conn, "r1", a)
        assert claim is not None
        assert await taskstore.fail(conn, claim, "boom 2", ["batch-2"]) == "failed"
        assert await taskstore.claim(conn, "r1", a) is None
        task = await (await conn.execute("SELECT * FROM tasks.task")).fetchone()
        assert task is not None
        batches = await (await conn.execute("SELECT id, attempt FROM tasks.batch")).fetchall()
        errors = await (await conn.execute("SELECT message FROM tasks.error")).fetchall()
    assert task["status"] == "failed" and task["error"] == "boom 2" and task["attempts"] == 2
    assert sorted((b["id"], b["attempt"]) for b in batches) == [("batch-1", 1), ("batch-2", 2)]
    assert len(errors) == 2


async def test_leases_renewed_by_heartbeat_do_not_expire(installed_dsn: str) -> None:
    (a, _) = await make_run(installed_dsn)
    async with connection(installed_dsn, autocommit=True) as conn:
        await taskstore.feed(conn, "r1", new_tasks(1), max_attempts=1, timeout_s=None)
        await taskstore.claim(conn, "r1", a, lease_s=0.2)
        await taskstore.renew_leases(conn, [a], lease_s=60)
        await asyncio.sleep(0.3)
        assert await taskstore.requeue_expired(conn, "r1") == []
        # Without renewal, a task on its last attempt fails when its worker dies.
        await taskstore.renew_leases(conn, [a], lease_s=0.01)
        await asyncio.sleep(0.05)
        [(_, status)] = await taskstore.requeue_expired(conn, "r1")
    assert status == "failed"


async def test_release_activity_gives_claims_back(installed_dsn: str) -> None:
    (a, _) = await make_run(installed_dsn)
    async with connection(installed_dsn, autocommit=True) as conn:
        await taskstore.feed(conn, "r1", new_tasks(3), max_attempts=3, timeout_s=None)
        for _ in range(2):
            await taskstore.claim(conn, "r1", a)
        released = await taskstore.release_activity(conn, a, "provider gone")
        counts = await taskstore.counts(conn, "r1")
        assert [status for _, status in released] == ["pending", "pending"]
        assert counts.pending == 3
        # Stopped on purpose: the attempt is given back.
        claim = await taskstore.claim(conn, "r1", a)
        assert claim is not None
        await taskstore.release_activity(conn, a, "budget", count_attempt=False)
        row = await (
            await conn.execute("SELECT attempts FROM tasks.task WHERE id = %s", (claim.task_id,))
        ).fetchone()
        assert row is not None
    assert row["attempts"] == claim.attempt - 1


async def test_claimed_row_needs_an_activity(installed_dsn: str) -> None:
    await make_run(installed_dsn)
    async with connection(installed_dsn, autocommit=True) as conn:
        await taskstore.feed(conn, "r1", new_tasks(1), max_attempts=1, timeout_s=None)
        with pytest.raises(psycopg.errors.CheckViolation):
            await conn.execute("UPDATE tasks.task SET status = 'claimed'")
