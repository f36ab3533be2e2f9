"""Follow-up tasks in the task table: stored with their parent's result, exactly once.

Through the whole pipeline they are tested by yacat (tests/integration/test_examples.py).
"""

from __future__ import annotations

import asyncio

from golem_tasks.db.connect import connection
from golem_tasks.store import tasks as taskstore
from golem_tasks.store.tasks import NewTask
from tests.helpers import make_run


async def test_follow_ups_are_stored_with_the_result_and_claimed_first(installed_dsn: str) -> None:
    a, _ = await make_run(installed_dsn)
    async with connection(installed_dsn, autocommit=True) as conn:
        fed = [NewTask(str(n), n, {"n": n}) for n in range(3)]
        await taskstore.feed(conn, "r1", fed, max_attempts=4, timeout_s=7)
        first = await taskstore.claim(conn, "r1", a)
        assert first is not None
        assert first.key == "0"
        children = [{"id": "left", "x": 1}, {"x": 2}]
        assert await taskstore.complete(conn, first, {"ok": 1}, follow_ups=children)
        rows = await (
            await conn.execute(
                "SELECT key, data, position, max_attempts, timeout_s, parent_id, status "
                "FROM tasks.task WHERE parent_id IS NOT NULL ORDER BY key"
            )
        ).fetchall()
        assert [(r["key"], r["data"], r["position"]) for r in rows] == [
            ("0/1", {"x": 2}, 0),
            ("0/left", {"id": "left", "x": 1}, 0),
        ]
        assert {(r["max_attempts"], r["timeout_s"], r["parent_id"]) for r in rows} == {
            (4, 7.0, first.task_id)
        }
        # Depth first: the parent's follow-ups come before the tasks fed after it.
        nxt = await taskstore.claim(conn, "r1", a)
        assert nxt is not None
        assert nxt.key.startswith("0/")
        counts = await taskstore.counts(conn, "r1")
        assert (counts.total, counts.follow_ups, counts.done) == (5, 2, 1)


async def test_a_duplicate_or_late_completion_adds_no_follow_ups(installed_dsn: str) -> None:
    a, b = await make_run(installed_dsn)
    async with connection(installed_dsn, autocommit=True) as conn:
        await taskstore.feed(conn, "r1", [NewTask("p", 0, {})], max_attempts=3, timeout_s=None)
        first = await taskstore.claim(conn, "r1", a, lease_s=0.01)
        assert first is not None
        await asyncio.sleep(0.05)
        await taskstore.requeue_expired(conn, "r1")
        second = await taskstore.claim(conn, "r1", b)
        assert second is not None
        # The first worker's result arrives late: neither it nor its follow-ups count.
        assert not await taskstore.complete(conn, first, 1, follow_ups=[{"from": "a"}])
        assert await taskstore.complete(conn, second, 2, follow_ups=[{"from": "b"}])
        # The same completion stored again (a retry after a lost commit reply).
        assert not await taskstore.complete(conn, second, 2, follow_ups=[{"from": "b"}])
        rows = await (
            await conn.execute("SELECT key, data FROM tasks.task WHERE parent_id IS NOT NULL")
        ).fetchall()
    assert [(r["key"], r["data"]) for r in rows] == [("p/0", {"from": "b"})]


async def test_a_failed_store_adds_no_follow_ups(installed_dsn: str) -> None:
    """Result and follow-ups commit together: a follow-up that cannot be stored rolls back
    the result too, and the task stays claimed for its worker to fail or retry."""
    a, _ = await make_run(installed_dsn)
    async with connection(installed_dsn, autocommit=True) as conn:
        await taskstore.feed(conn, "r1", [NewTask("p", 0, {})], max_attempts=3, timeout_s=None)
        claim = await taskstore.claim(conn, "r1", a)
        assert claim is not None
        try:
            await taskstore.complete(conn, claim, 1, follow_ups=[{"bad": "\u0000"}])
        except Exception as exc:
            assert "0000" in str(exc) or "null" in str(exc).lower()
        else:
            raise AssertionError("a NUL character in jsonb must be refused")
        row = await (await conn.execute("SELECT status, result FROM tasks.task")).fetchone()
        assert row is not None
        assert row["status"] == "claimed" and row["result"] is None
        count = await (await conn.execute("SELECT count(*) AS n FROM tasks.task")).fetchone()
        assert count is not None
        assert count["n"] == 1
