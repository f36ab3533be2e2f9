"""The views' tallies (migration 0009) stay equal to a direct count of the rows: under
concurrent claimers with retries, failed attempts, expired and released claims and
follow-ups; for runs stored before the migration; and through a real run whose supervisor
is killed and resumed, checked while it works and at its end."""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
from pathlib import Path

import pytest

from golem_tasks.db import migrate
from golem_tasks.db.connect import connection
from golem_tasks.monitor.snapshot import snapshot
from golem_tasks.store import tasks as taskstore
from golem_tasks.store.tasks import NewTask
from tests.helpers import make_run
from tests.integration.pipeline_support import APP, Cli, devnet, env_for, wait_for
from tests.support.audit import audit_run
from tests.support.tallies import folded_share, tally_mismatches

pytestmark = pytest.mark.timeout(240)

# Test-only SQL: documents as the ledger writes them, then decided again.
NOTES = """
INSERT INTO tasks.debit_note (id, run_id, agreement_id, activity_id, total_amount_due,
    increment, status, received_at, decided_at)
SELECT 'dn' || n, %(run_id)s, 'ag' || (n %% 2), 'act' || (n %% 2), n * 0.001, 0.001,
       CASE WHEN n %% 5 = 0 THEN 'refused' ELSE 'accepted' END,
       now(), now() - make_interval(secs => n)
FROM generate_series(1, %(notes)s) n
"""
DECIDE_AGAIN = "UPDATE tasks.debit_note SET status = 'accepted' WHERE status = 'refused'"
INVOICE = """
INSERT INTO tasks.invoice (id, run_id, agreement_id, amount, increment, status, decided_at)
VALUES ('inv-' || %(run_id)s, %(run_id)s, 'ag0', 0.05, 0.01, 'accepted', now())
"""


async def work(dsn: str, run_id: str, activity_id: str, seed: int, stop: asyncio.Event) -> int:
    """One claimer: completes most tasks (some with follow-ups and batches), fails some
    attempts, lets some claims expire and requeues expired ones; returns its claims."""
    rng = random.Random(seed)
    claims = 0
    async with connection(dsn, autocommit=True) as conn:
        while not stop.is_set():
            roll = rng.random()
            lease = 0.05 if roll < 0.05 else taskstore.DEFAULT_LEASE_S
            claim = await taskstore.claim(conn, run_id, activity_id, lease_s=lease)
            if claim is None:
                if not await taskstore.requeue_expired(conn, run_id):
                    await asyncio.sleep(0.06)
                    if not await taskstore.open_count(conn, run_id):
                        return claims
                continue
            claims += 1
            if claims % 10 == 0:  # a heartbeat: changes no tally (and keeps leases short)
                await taskstore.renew_leases(conn, [activity_id], lease_s=0.05)
            if roll < 0.05:
                continue  # this claim expires: another claimer requeues it
            if roll < 0.25:
                await taskstore.fail(conn, claim, "exit code 3", [f"b{claim.task_id}-{claims}"])
            elif roll < 0.35 and "/" not in claim.key:
                follow = [{"part": 1}, {"part": 2}]
                await taskstore.complete(conn, claim, {"n": claim.key}, [], follow_ups=follow)
            else:
                await taskstore.complete(conn, claim, 7, [f"b{claim.task_id}-{claims}"])
    return claims


async def test_tallies_equal_the_rows_under_concurrent_claimers(installed_dsn: str) -> None:
    activities = await make_run(installed_dsn, activities=5)
    async with connection(installed_dsn, autocommit=True) as conn:
        await conn.execute("UPDATE tasks.agreement SET approved_at = now()")
        fed = [NewTask(str(n), n, {"n": n}) for n in range(300)]
        await taskstore.feed(conn, "r1", fed, max_attempts=2, timeout_s=None)
    stop = asyncio.Event()
    claimers = [
        asyncio.create_task(work(installed_dsn, "r1", a, n, stop)) for n, a in enumerate(activities)
    ]
    # Checked while the claimers write: any snapshot agrees with the rows.
    checks = 0
    while not all(c.done() for c in claimers) and checks < 400:
        assert await tally_mismatches(installed_dsn, "r1") == []
        checks += 1
        if checks == 3:
            async with connection(installed_dsn, autocommit=True) as conn:
                await conn.execute(NOTES, {"run_id": "r1", "notes": 40})
                # One activity breaks and gives its claims back.
                await taskstore.release_activity(conn, activities[0], "gone", count_attempt=False)
        await asyncio.sleep(0.05)
    assert sum(await asyncio.gather(*claimers)) > 300
    async with connection(installed_dsn, autocommit=True) as conn:
        await conn.execute(DECIDE_AGAIN)
        await conn.execute(INVOICE, {"run_id": "r1"})
        counts = await taskstore.counts(conn, "r1")
        snap = await snapshot(conn, "r1", providers=10, timeline=20)
    assert checks >= 3
    assert await tally_mismatches(installed_dsn, "r1") == []
    assert counts.follow_ups > 0 and counts.failed > 0 and counts.done > 0
    assert counts.pending == counts.claimed == 0
    # The views read the tallies: the same numbers as a count of the rows.
    assert snap.counts == counts
    assert snap.timeline[-1]["results"] == counts.done
    assert sum(p["done"] for p in snap.providers) == counts.done
    assert snap.market["batches"] > 0
    # Writers folded as they went; a fold now moves the rest, and the sums stay the same.
    tally_rows, _ = await folded_share(installed_dsn, "r1")
    assert tally_rows > 0  # and deltas may wait for the next fold
    async with connection(installed_dsn, autocommit=True) as conn:
        await conn.execute("SELECT tasks.fold_tally('r1')")
    assert (await folded_share(installed_dsn, "r1"))[1] == 0
    assert await tally_mismatches(installed_dsn, "r1") == []


async def test_the_migration_tallies_runs_stored_before_it(fresh_dsn: str) -> None:
    bundled = migrate.bundled()
    tallies = next(m.version for m in bundled if m.name == "view_tallies")
    async with connection(fresh_dsn, autocommit=True) as conn:
        await migrate.install(conn, [m for m in bundled if m.version < tallies])
    activities = await make_run(fresh_dsn, activities=2)
    async with connection(fresh_dsn, autocommit=True) as conn:
        fed = [NewTask(str(n), n, {"n": n}) for n in range(20)]
        await taskstore.feed(conn, "r1", fed, max_attempts=2, timeout_s=None)
        for n in range(12):
            claim = await taskstore.claim(conn, "r1", activities[n % 2])
            assert claim is not None
            if n % 4 == 0:
                await taskstore.fail(conn, claim, "no")
            else:
                follow = [{"x": 1}] if n == 1 else []
                await taskstore.complete(conn, claim, n, [f"b{n}"], follow_ups=follow)
        await conn.execute(NOTES, {"run_id": "r1", "notes": 10})
        await conn.execute(INVOICE, {"run_id": "r1"})
        await migrate.install(conn, bundled)
    assert await tally_mismatches(fresh_dsn, "r1") == []
    # And the triggers carry on from the filled tallies.
    async with connection(fresh_dsn, autocommit=True) as conn:
        while claim := await taskstore.claim(conn, "r1", activities[0]):
            await taskstore.complete(conn, claim, 1, [f"c{claim.task_id}"])
        await conn.execute(DECIDE_AGAIN)
    assert await tally_mismatches(fresh_dsn, "r1") == []


async def test_tallies_of_a_real_run_killed_and_resumed(installed_dsn: str, tmp_path: Path) -> None:
    """Retries, a task that fails every attempt, a supervisor killed mid-run and resumed:
    the tallies equal the rows at every check while it works and at the end."""
    run_id = "tallied"
    mismatches: list[str] = []
    checks = [0]

    async def check_all_along() -> None:
        while True:
            mismatches.extend(await tally_mismatches(installed_dsn, run_id))
            checks[0] += 1
            await asyncio.sleep(0.2)

    async with devnet(providers=4, seed=31) as net:
        env = env_for(
            net, installed_dsn, MULTIPLY_TASKS="60", MULTIPLY_SLEEP="0.1", MULTIPLY_FAIL="5"
        )
        supervise = ("supervise", APP, "--workers", "3", "--run-id", run_id)
        worker = await Cli.start("worker", "--concurrency", "3", env=env, log=tmp_path / "w.log")
        checker = asyncio.create_task(check_all_along())
        try:
            first = await Cli.start(*supervise, env=env, log=tmp_path / "sup1.log")
            await wait_for(
                installed_dsn,
                "SELECT count(*) FROM tasks.task WHERE run_id = 'tallied' AND status = 'done'",
                lambda n: n >= 15,
                90,
            )
            first.signal(signal.SIGKILL)
            await first.wait()
            second = await Cli.start(*supervise, env=env, log=tmp_path / "sup2.log")
            assert await second.wait(150) == 1, second.output()  # task 5 failed for good
        finally:
            checker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await checker
            await worker.stop()
        figures = await audit_run(net, installed_dsn, run_id)  # includes the tallies
    assert mismatches == []
    assert checks[0] >= 5
    assert (figures.done, figures.failed) == (59, 1)
