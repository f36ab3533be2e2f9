"""A worker process's batched claim statements: a result PostgreSQL refuses fails only the
request that carried it, and a database outage mid-batch loses nothing and charges no
attempt (the drivers wait it out and their requests go through once it is back)."""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from golem_tasks.db.connect import connection, open_pool
from golem_tasks.db.embedded import EmbeddedPostgres
from golem_tasks.db.listen import Listener
from golem_tasks.retry import patiently
from golem_tasks.store import tasks as taskstore
from golem_tasks.store.tasks import Claim, ClaimRequest, NewTask
from tests.conftest import FAST_SETTINGS
from tests.helpers import make_run, run_cli
from workers.claims import ClaimBatcher

pytestmark = pytest.mark.timeout(120)

# Test-only inline SQL: a refusal PostgreSQL makes that no check in Python foresees (as a
# constraint or a trigger of the user's own would).
REFUSE = """
CREATE FUNCTION tasks.refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.result = '"poison"'::jsonb THEN
        RAISE EXCEPTION 'this result is refused';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER refuse_poison BEFORE UPDATE ON tasks.task
    FOR EACH ROW EXECUTE FUNCTION tasks.refuse_poison();
"""


async def _claimed(dsn: str, activities: list[str], tasks: int) -> list[Claim]:
    async with connection(dsn, autocommit=True) as conn:
        fed = [NewTask(str(n), n, {"n": n}) for n in range(tasks)]
        await taskstore.feed(conn, "r1", fed, max_attempts=3, timeout_s=None)
        claims = [await taskstore.claim(conn, "r1", activity) for activity in activities]
    assert all(claims)
    return [c for c in claims if c is not None]


async def _tasks(dsn: str) -> list[dict[str, Any]]:
    async with connection(dsn) as conn:
        cur = await conn.execute(  # test-only inline SQL
            "SELECT key, status, attempts, result, activity_id FROM tasks.task ORDER BY position"
        )
        return await cur.fetchall()


async def test_a_refused_result_fails_only_its_own_request_of_a_batch(
    installed_dsn: str,
) -> None:
    activities = await make_run(installed_dsn, activities=6)
    claims = await _claimed(installed_dsn, activities, tasks=12)
    async with connection(installed_dsn, autocommit=True) as conn:
        await conn.execute(REFUSE)
    pool = await open_pool(installed_dsn, max_size=4)
    try:
        batcher = ClaimBatcher(pool, lease_s=60)
        results: list[Any] = [{"n": c.data["n"]} for c in claims]
        results[-1] = "poison"  # the last request shares a statement with three others
        answers = await asyncio.gather(
            *(
                batcher.submit("r1", ClaimRequest(c.activity_id, c, r))
                for c, r in zip(claims, results, strict=True)
            ),
            return_exceptions=True,
        )
    finally:
        await pool.close()
    *good, refused = answers
    assert isinstance(refused, psycopg.errors.RaiseException), refused
    for claim, answer in zip(claims, good, strict=False):
        assert not isinstance(answer, BaseException), answer
        stored, following = answer
        assert stored and following is not None and following.activity_id == claim.activity_id
    rows = await _tasks(installed_dsn)
    assert [r["status"] for r in rows[:5]] == ["done"] * 5
    assert [r["result"] for r in rows[:5]] == results[:5]
    # The refused request changed nothing: its task is still claimed, nothing claimed for it.
    assert rows[5]["status"] == "claimed" and rows[5]["activity_id"] == activities[5]
    assert [r["status"] for r in rows[6:]] == ["claimed"] * 5 + ["pending"]


@pytest.fixture
async def own_server() -> AsyncIterator[tuple[EmbeddedPostgres, str]]:
    """A PostgreSQL of this test's own, which it stops and starts (a restart)."""
    home = Path(tempfile.mkdtemp(prefix="gt-batches-"))
    server = EmbeddedPostgres(home, settings=FAST_SETTINGS)
    dsn = await asyncio.to_thread(server.start)
    try:
        result = await asyncio.to_thread(run_cli, "install", "--dsn", dsn)
        assert result.returncode == 0, result.stderr
        yield server, dsn
    finally:
        await asyncio.to_thread(server.stop)
        shutil.rmtree(home, ignore_errors=True)


async def test_a_database_outage_mid_batch_is_waited_out_with_nothing_lost(
    own_server: tuple[EmbeddedPostgres, str],
) -> None:
    server, dsn = own_server
    activities = await make_run(dsn, activities=4)
    claims = await _claimed(dsn, activities, tasks=8)
    pool = await open_pool(dsn, max_size=4)
    try:
        batcher = ClaimBatcher(pool, lease_s=300)

        async def store(claim: Claim) -> tuple[bool, Claim | None]:
            request = ClaimRequest(claim.activity_id, claim, {"n": claim.data["n"]})
            # As the driver does: the same request again until the database answers.
            return await patiently(lambda: batcher.submit("r1", request), what="store")

        await asyncio.to_thread(server.stop)
        waiting = [asyncio.create_task(store(c)) for c in claims]
        await asyncio.sleep(2)
        assert not any(t.done() for t in waiting)  # waiting, not failed
        await asyncio.to_thread(server.start)
        answers = await asyncio.wait_for(asyncio.gather(*waiting), 60)
    finally:
        await pool.close()
    assert all(stored and following is not None for stored, following in answers)
    rows = await _tasks(dsn)
    assert [r["status"] for r in rows] == ["done"] * 4 + ["claimed"] * 4
    # One attempt each: the outage charged none.
    assert [r["attempts"] for r in rows] == [1] * 8


async def _listeners(dsn: str) -> int:
    async with connection(dsn) as conn:
        cur = await conn.execute(  # test-only inline SQL
            "SELECT count(*) AS n FROM pg_stat_activity WHERE query LIKE 'LISTEN golem_tasks%%'"
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row["n"])


async def _until_listeners(dsn: str, count: int) -> None:
    for _ in range(100):
        if await _listeners(dsn) == count:
            return
        await asyncio.sleep(0.1)
    assert await _listeners(dsn) == count


async def test_a_listener_listens_again_after_a_restart_and_leaks_no_connection(
    own_server: tuple[EmbeddedPostgres, str], caplog: pytest.LogCaptureFixture
) -> None:
    server, dsn = own_server
    caplog.set_level(logging.INFO, logger="golem_tasks.db.listen")
    await make_run(dsn, activities=1)
    async with Listener(dsn, "listen_pending") as listener:
        pending = listener.signal("r1")
        await asyncio.wait_for(listener.listening.wait(), 10)
        await _until_listeners(dsn, 1)
        for restart in range(2):
            await asyncio.to_thread(server.stop)
            await asyncio.to_thread(server.start)
            await _until_listeners(dsn, 1)  # listening again, on one connection
            await asyncio.sleep(0.3)  # its wake-up of every waiter (on reconnecting) is past
            seen = pending.count
            async with connection(dsn, autocommit=True) as conn:
                tasks = [NewTask(f"{restart}", restart, {"n": restart})]
                await taskstore.feed(conn, "r1", tasks, max_attempts=1, timeout_s=None)
            await asyncio.wait_for(pending.wait(seen), 10)  # heard after the restart
            assert await _listeners(dsn) == 1  # one connection, not one per restart
    await _until_listeners(dsn, 0)
    said = [r.getMessage() for r in caplog.records if r.name == "golem_tasks.db.listen"]
    # One line when the connection goes and one when it is back, however long the outage.
    assert sum("connection lost" in m for m in said) == 2, said
    assert sum("listening again" in m for m in said) == 2, said
