"""Signals on the task path: the feeder is woken by claims before its window runs dry, and
idle workers are woken when tasks become pending, with no poll in between."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import types
from typing import Any

import pytest

from golem_tasks.appmodule import App
from golem_tasks.db.connect import connection, open_pool
from golem_tasks.db.listen import Listener
from golem_tasks.store import tasks as taskstore
from golem_tasks.store.tasks import NewTask
from golem_tasks.supervisor.feeder import Feeder
from tests.helpers import make_run

pytestmark = pytest.mark.timeout(120)


def endless_app() -> App:
    return App(
        spec="endless",
        module=types.ModuleType("endless"),
        payload=None,
        get_tasks=lambda run_id: ({"n": n} for n in itertools.count()),
        execute_task=None,
        setup_activity=None,
        results_cnt=None,
        task_timeout_s=60.0,
        max_attempts=2,
    )


async def test_claims_wake_the_feeder_before_its_window_runs_dry(installed_dsn: str) -> None:
    """With a poll far longer than the test, only the claims' wake-up keeps tasks coming."""
    [activity] = await make_run(installed_dsn, activities=1)
    window, claims = 20, 300
    pool = await open_pool(installed_dsn, max_size=4)
    async with Listener(installed_dsn, "listen_feed") as wake:
        feeder = Feeder(pool, "r1", endless_app(), window=window, poll_s=600, wake=wake)
        feeding = asyncio.create_task(feeder.run())
        try:
            await asyncio.wait_for(wake.listening.wait(), 10)
            async with connection(installed_dsn, autocommit=True) as conn:
                claim = None
                most_pending = 0
                for n in range(claims):
                    async with asyncio.timeout(10):
                        while claim is None:
                            claim = await taskstore.claim(conn, "r1", activity)
                            if claim is None:
                                await asyncio.sleep(0.01)  # fed within milliseconds
                    assert claim.data == {"n": n}
                    most_pending = max(most_pending, await taskstore.pending_count(conn, "r1"))
                    _, claim = await taskstore.complete_and_claim(conn, claim, n * 7)
                counts = await taskstore.counts(conn, "r1")
            assert counts.done == claims
            assert most_pending <= window  # the window still bounds what is stored
            assert counts.total <= claims + window + 1
        finally:
            feeding.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feeding
            await pool.close()


async def test_tasks_becoming_pending_wake_listeners(installed_dsn: str) -> None:
    [activity] = await make_run(installed_dsn, activities=1)
    async with Listener(installed_dsn, "listen_pending") as listener:
        await asyncio.wait_for(listener.listening.wait(), 10)
        signal = listener.signal("r1")
        async with connection(installed_dsn, autocommit=True) as conn:
            seen = signal.count
            tasks = [NewTask(str(n), n, {"n": n}) for n in range(3)]
            await taskstore.feed(conn, "r1", tasks, max_attempts=2, timeout_s=None)
            await asyncio.wait_for(signal.wait(seen), 5)  # fed

            claim = await taskstore.claim(conn, "r1", activity)
            assert claim is not None
            seen = signal.count
            assert await taskstore.fail(conn, claim, "boom") == "pending"
            await asyncio.wait_for(signal.wait(seen), 5)  # back in the queue

            seen = signal.count
            stored, claim = await taskstore.complete_and_claim(conn, claim, 1)
            assert not stored and claim is not None  # a stale result, and the next task
            await asyncio.sleep(0.3)
            assert signal.count == seen  # claims and results wake nobody


async def test_complete_and_claim_stores_the_result_and_its_batches_once(
    installed_dsn: str,
) -> None:
    [activity] = await make_run(installed_dsn, activities=1)
    async with connection(installed_dsn, autocommit=True) as conn:
        tasks = [NewTask(str(n), n, {"n": n}) for n in range(2)]
        await taskstore.feed(conn, "r1", tasks, max_attempts=2, timeout_s=None)
        first = await taskstore.claim(conn, "r1", activity)
        assert first is not None
        stored, second = await taskstore.complete_and_claim(conn, first, {"r": 0}, ["b1", "b2"])
        assert stored and second is not None and second.data == {"n": 1}
        again, third = await taskstore.complete_and_claim(conn, first, {"r": 9}, ["b3"])
        assert not again and third is None
        stored, last = await taskstore.complete_and_claim(conn, second, 7, claim_next=False)
        assert stored and last is None
        cur = await conn.execute(  # test-only inline SQL
            "SELECT t.key, t.result, array_agg(b.id ORDER BY b.id) FILTER (WHERE b.id IS NOT NULL)"
            " AS batches FROM tasks.task t LEFT JOIN tasks.batch b ON b.task_id = t.id"
            " GROUP BY t.key, t.result ORDER BY t.key"
        )
        rows: list[dict[str, Any]] = await cur.fetchall()
    assert rows == [
        {"key": "0", "result": {"r": 0}, "batches": ["b1", "b2"]},
        {"key": "1", "result": 7, "batches": None},
    ]


async def test_heartbeat_skips_claims_being_stored_instead_of_waiting(
    installed_dsn: str,
) -> None:
    """A claim statement in flight holds its task rows; the heartbeat must not wait for it
    (two multi-row updates in different orders deadlock)."""
    [a, b] = await make_run(installed_dsn, activities=2)
    async with connection(installed_dsn, autocommit=True) as conn:
        tasks = [NewTask(str(n), n, {"n": n}) for n in range(2)]
        await taskstore.feed(conn, "r1", tasks, max_attempts=2, timeout_s=None)
        first = await taskstore.claim(conn, "r1", a)
        second = await taskstore.claim(conn, "r1", b)
        assert first is not None and second is not None
    async with connection(installed_dsn) as holder, connection(installed_dsn) as beat:
        await holder.execute(  # test-only inline SQL: a statement that is storing task 1
            "SELECT id FROM tasks.task WHERE id = %s FOR UPDATE", (first.task_id,)
        )
        await asyncio.wait_for(taskstore.renew_leases(beat, [a, b]), 5)
        await beat.commit()
        await holder.rollback()
