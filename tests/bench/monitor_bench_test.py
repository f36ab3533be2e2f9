"""Views of a big run (``make bench``): summary, show, the dashboard's page and JSON and
/metrics on a run of 100,000 tasks and 1,000 activities, built directly with SQL.

Target: each under 0.5 s, the page with its first JSON under 0.2 s. Each view is read 7
times; the best time is what the code costs (the others add whatever else the shared
machine was doing, as the printed median and load average show), and the targets apply to
it. In-process times: the command-line tools add Python's start-up on top.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import psycopg
import psycopg.sql
import pytest
from rich.console import Console

from golem_tasks.db.connect import connection
from golem_tasks.monitor import render, views
from golem_tasks.monitor.snapshot import snapshot
from tests.helpers import cli_env, run_cli
from tests.integration.watch_support import get, serve_dashboard

TASKS = 100_000
ACTIVITIES = 1_000
RUN = "big"

# Test-only SQL: a finished-looking run in mid-flight, every table filled as a real run
# of that size fills it (one batch per task, a debit note per activity-minute, errors).
BUILD = [
    """INSERT INTO tasks.run (id, app, workers, budget_per_hour, subnet, payment_platform,
        feed_done, created_at, supervisor, supervisor_seen_at)
       VALUES ('big', 'bench.py', 1000, 50, 'public', 'erc20-holesky-tglm', true,
               now() - interval '3 hours', 'bench:1', now())""",
    """INSERT INTO tasks.demand (id, run_id, properties, constraints, expires_at)
       VALUES ('d', 'big', '{}', '', now() + interval '1 hour')""",
    """INSERT INTO tasks.proposal (id, run_id, demand_id, issuer, provider_id, provider_name,
        properties)
       SELECT 'p' || n, 'big', 'd', 'provider', 'prov' || n, 'provider-' || n, '{}'
       FROM generate_series(1, 3000) n""",
    """INSERT INTO tasks.allocation (id, run_id, amount, platform, period_start)
       SELECT 'al' || h, 'big', 50, 'erc20-holesky-tglm', now() - make_interval(hours => h)
       FROM generate_series(0, 3) h""",
    """INSERT INTO tasks.agreement (id, run_id, provider_id, provider_name, status,
        created_at, approved_at)
       SELECT 'ag' || n, 'big', 'prov' || n, 'provider-' || n,
              CASE WHEN n %% 10 = 0 THEN 'terminated' ELSE 'approved' END,
              now() - interval '3 hours', now() - interval '3 hours'
       FROM generate_series(1, %(activities)s) n""",
    """INSERT INTO tasks.activity (id, run_id, agreement_id, status, worker, created_at,
        ready_at, stopped_at, stop_reason)
       SELECT 'act' || n, 'big', 'ag' || n,
              CASE WHEN n %% 10 = 0 THEN 'stopped' WHEN n %% 97 = 0 THEN 'failed'
                   ELSE 'ready' END,
              'bench:1:x', now() - interval '3 hours',
              now() - interval '3 hours' + make_interval(secs => n),
              CASE WHEN n %% 10 = 0 OR n %% 97 = 0 THEN now() - interval '1 hour' END,
              CASE WHEN n %% 10 = 0 THEN 'cost: too expensive'
                   WHEN n %% 97 = 0 THEN 'provider gone' END
       FROM generate_series(1, %(activities)s) n""",
    """INSERT INTO tasks.task (run_id, key, position, data, status, attempts, max_attempts,
        result, activity_id, created_at, claimed_at, started_at, finished_at, lease_until)
       SELECT 'big', n::text, n, jsonb_build_object('n', n),
              CASE WHEN n <= %(done)s THEN 'done' WHEN n <= %(failed)s THEN 'failed'
                   WHEN n <= %(claimed)s THEN 'claimed' ELSE 'pending' END,
              CASE WHEN n <= %(claimed)s THEN 1 ELSE 0 END, 3,
              CASE WHEN n <= %(done)s THEN to_jsonb(n * 7) END,
              CASE WHEN n <= %(claimed)s THEN 'act' || (1 + n %% %(activities)s) END,
              now() - interval '3 hours',
              CASE WHEN n <= %(claimed)s
                   THEN now() - interval '3 hours' + make_interval(secs => n / %(per_s)s) END,
              CASE WHEN n <= %(claimed)s
                   THEN now() - interval '3 hours' + make_interval(secs => n / %(per_s)s) END,
              CASE WHEN n <= %(failed)s THEN now() - interval '3 hours'
                   + make_interval(secs => n / %(per_s)s + 20) END,
              CASE WHEN n > %(failed)s AND n <= %(claimed)s THEN now() + interval '1 minute' END
       FROM generate_series(1, %(tasks)s) n""",
    """INSERT INTO tasks.batch (id, run_id, activity_id, task_id, attempt)
       SELECT 'b' || t.id, 'big', t.activity_id, t.id, 1 FROM tasks.task t
       WHERE t.run_id = 'big' AND t.activity_id IS NOT NULL""",
    """INSERT INTO tasks.debit_note (id, run_id, agreement_id, activity_id, total_amount_due,
        increment, status, allocation_id, received_at, decided_at)
       SELECT 'dn' || a || '-' || m, 'big', 'ag' || a, 'act' || a, m * 0.000123456789012345,
              0.000123456789012345, CASE WHEN m = 150 AND a %% 50 = 0 THEN 'refused'
              ELSE 'accepted' END, 'al0',
              now() - interval '3 hours' + make_interval(mins => m),
              now() - interval '3 hours' + make_interval(mins => m)
       FROM generate_series(1, %(activities)s) a, generate_series(1, 150) m""",
    """INSERT INTO tasks.invoice (id, run_id, agreement_id, amount, increment, status,
        allocation_id, decided_at)
       SELECT 'inv' || n, 'big', 'ag' || n, 0.02, 0.0015, 'accepted', 'al0',
              now() - interval '1 hour'
       FROM generate_series(10, %(activities)s, 10) n""",
    """INSERT INTO tasks.error (run_id, at, source, kind, message, activity_id, task_id)
       SELECT 'big', now() - make_interval(secs => n), 'worker', 'task',
              'task ' || n || ' attempt 1: exit code 3', 'act' || (1 + n %% %(activities)s), n
       FROM generate_series(1, 2000) n""",
    """INSERT INTO tasks.results_history (run_id, at, results_cnt)
       SELECT 'big', now() - make_interval(secs => 10 * n), 90000 - 80 * n
       FROM generate_series(0, 1000) n""",
]


@contextlib.asynccontextmanager
async def built_run(pg_server: Any, shape: dict[str, Any]) -> AsyncIterator[str]:
    """A fresh database holding run ``big`` of the given shape (see BUILD's parameters)."""
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server.dsn("postgres"), autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
    dsn = pg_server.dsn(name)
    assert run_cli("install", "--dsn", dsn).returncode == 0
    started = time.perf_counter()
    async with connection(dsn, autocommit=True) as conn:
        for statement in BUILD:
            await conn.execute(statement, {"activities": ACTIVITIES, **shape})
        # A real run's writers fold the tallies every few statements; these few big ones
        # did not get to it.
        await conn.execute("SELECT tasks.fold_tally(%s)", (RUN,))
        # What autovacuum does to a table that has been written this much.
        tables = ("task", "activity", "agreement", "debit_note", "invoice", "batch", "error")
        for table in (*tables, "tally", "tally_delta"):
            await conn.execute(f"VACUUM ANALYZE tasks.{table}")
    print(f"\n[monitor bench] {shape['tasks']} tasks built in {time.perf_counter() - started:.1f}s")
    try:
        yield dsn
    finally:
        with psycopg.connect(pg_server.dsn("postgres"), autocommit=True) as conn:
            conn.execute(
                psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    psycopg.sql.Identifier(name)
                )
            )


@pytest.fixture(scope="module")
async def big_run(pg_server: Any) -> AsyncIterator[str]:
    """A database holding the big run in mid-flight (built once for the module)."""
    shape = {"tasks": TASKS, "done": 90_000, "failed": 90_500, "claimed": 91_000, "per_s": 9.0}
    async with built_run(pg_server, shape) as dsn:
        yield dsn


async def timed(action: Callable[[], Awaitable[Any]], times: int = 7) -> tuple[float, float]:
    """(best, median) seconds of ``times`` calls after a warm-up call."""
    await action()  # warm caches, as a view refreshed every few seconds has them
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        await action()
        samples.append(time.perf_counter() - started)
    return min(samples), statistics.median(samples)


@pytest.mark.bench
@pytest.mark.timeout(900)
async def test_views_of_a_big_run(big_run: str, capsys: Any, record_property: Any) -> None:
    dsn = big_run
    console = Console(file=io.StringIO(), width=120)
    measured: dict[str, tuple[float, float]] = {}

    async def summary() -> None:
        async with connection(dsn, autocommit=True) as conn:
            console.print(render.summary(await snapshot(conn, RUN)))

    async def show() -> None:
        async with connection(dsn, autocommit=True) as conn:
            console.print(render.detail(await snapshot(conn, RUN)))

    async def summary_json() -> None:
        async with connection(dsn, autocommit=True) as conn:
            views.summary(await snapshot(conn, RUN))

    measured["summary"] = await timed(summary)
    measured["show"] = await timed(show)
    measured["summary --json"] = await timed(summary_json)
    async with serve_dashboard(dsn) as url:

        async def fetch(path: str) -> Callable[[], Awaitable[Any]]:
            async def go() -> None:
                status, text = await get(url + path)
                assert status == 200, text[:500]

            return go

        measured["dashboard page"] = await timed(await fetch(""))
        measured["dashboard runs JSON"] = await timed(await fetch("api/runs"))
        measured["dashboard run JSON"] = await timed(await fetch(f"api/runs/{RUN}"))
        measured["/metrics"] = await timed(await fetch("metrics"))
        _, text = await get(f"{url}api/runs/{RUN}")
        assert '"done": 90000' in text and '"total": 100000' in text
    with capsys.disabled():
        load = os.getloadavg()[0]
        print(
            f"\n[monitor bench] {TASKS} tasks, {ACTIVITIES} activities, best and median of 7 "
            f"(load average {load:.1f} on {os.cpu_count()} cores):"
        )
        for name, (fastest, median) in measured.items():
            record_property(name, round(fastest, 4))
            print(f"  {name:22s} {fastest * 1000:7.1f} ms  (median {median * 1000:7.1f} ms)")
    best = {name: times[0] for name, times in measured.items()}
    page_load = best["dashboard page"] + best["dashboard runs JSON"] + best["dashboard run JSON"]
    slow = {name: s for name, s in best.items() if s >= 0.5}
    assert not slow, f"over 0.5 s: {slow}"
    # The page is usable once the page and its first two JSON reads are in.
    assert page_load < 0.2, f"page load {page_load:.3f}s"


@pytest.mark.bench
@pytest.mark.timeout(1800)
async def test_summary_and_show_of_a_million_task_run(
    pg_server: Any, capsys: Any, record_property: Any
) -> None:
    """Issue 9's figure: ``summary`` and ``show`` of a run fed 1,000,000 tasks (here all but
    a few hundred done, 1,000 activities), in process and as whole commands (median of 5,
    with Python's start-up, shown apart as ``golem-tasks --version``)."""
    shape = {"tasks": 1_000_000, "done": 999_000, "failed": 999_500, "claimed": 999_520}
    async with built_run(pg_server, {**shape, "per_s": 100.0}) as dsn:
        console = Console(file=io.StringIO(), width=120)

        async def summary() -> None:
            async with connection(dsn, autocommit=True) as conn:
                console.print(render.summary(await snapshot(conn, RUN)))

        async def show() -> None:
            async with connection(dsn, autocommit=True) as conn:
                console.print(render.detail(await snapshot(conn, RUN)))

        env = cli_env(GOLEM_TASKS_DSN=dsn)

        def command(*args: str) -> Callable[[], Awaitable[Any]]:
            async def go() -> None:
                result = await asyncio.to_thread(run_cli, *args, env=env)
                assert result.returncode == 0, result.stderr

            return go

        measured = {
            "summary": await timed(summary),
            "show": await timed(show),
            "golem-tasks summary": await timed(command("summary", "--run-id", RUN), 5),
            "golem-tasks show": await timed(command("show", "--run-id", RUN), 5),
            "golem-tasks --version": await timed(command("--version"), 5),
        }
    with capsys.disabled():
        print(
            f"\n[monitor bench] 1,000,000 tasks, best and median "
            f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores):"
        )
        for name, (best, median) in measured.items():
            record_property(name, round(median, 4))
            print(f"  {name:22s} {best * 1000:7.1f} ms  (median {median * 1000:7.1f} ms)")
    # The whole commands are printed, not asserted: Python's start-up alone varies by
    # seconds with the load of this shared machine.
    in_process = {name: measured[name][0] for name in ("summary", "show")}
    assert all(best < 0.5 for best in in_process.values()), in_process
