"""`golem-tasks install` against a real PostgreSQL: tables, idempotence, concurrency."""

from __future__ import annotations

import subprocess
import sys

import psycopg
import pytest

from golem_tasks.db import migrate
from golem_tasks.db.connect import connection
from tests.helpers import ROOT, cli_env, run_cli

RUN_MODEL_TABLES = {
    "run",
    "allocation",
    "demand",
    "proposal",
    "agreement",
    "activity",
    "batch",
    "debit_note",
    "invoice",
    "task",
    "results_history",
    "error",
    "tally",
    "tally_delta",
    "schema_migration",
    "supervisor_term",
}


def tables(dsn: str, schema: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
        ).fetchall()
    return {row[0] for row in rows}


def test_install_creates_every_table(fresh_dsn: str) -> None:
    result = run_cli("install", "--dsn", fresh_dsn)
    assert result.returncode == 0, result.stderr
    assert "installed golem-tasks schema version" in result.stdout
    assert tables(fresh_dsn, "tasks") == RUN_MODEL_TABLES
    assert {"procrastinate_jobs", "procrastinate_events", "procrastinate_workers"} <= tables(
        fresh_dsn, "procrastinate"
    )


def test_second_install_is_a_noop_that_says_so(fresh_dsn: str) -> None:
    assert run_cli("install", "--dsn", fresh_dsn).returncode == 0
    with psycopg.connect(fresh_dsn) as conn:
        before = conn.execute("SELECT * FROM tasks.schema_migration ORDER BY version").fetchall()
    again = run_cli("install", "--dsn", fresh_dsn)
    assert again.returncode == 0, again.stderr
    assert "up to date" in again.stdout
    with psycopg.connect(fresh_dsn) as conn:
        after = conn.execute("SELECT * FROM tasks.schema_migration ORDER BY version").fetchall()
    assert before == after
    assert [row[0] for row in after] == [m.version for m in migrate.bundled()]


def test_concurrent_installs_both_succeed(fresh_dsn: str) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "golem_tasks", "install", "--dsn", fresh_dsn],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(),
            cwd=ROOT,
        )
        for _ in range(3)
    ]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], outputs
    installed = [out for out, _ in outputs if "installed golem-tasks schema" in out]
    assert len(installed) == 1, outputs
    assert tables(fresh_dsn, "tasks") == RUN_MODEL_TABLES


async def test_runner_applies_only_missing_migrations(fresh_dsn: str) -> None:
    test_only = migrate.Migration(
        9001, "test_only", "CREATE TABLE tasks.test_only (id integer PRIMARY KEY)"
    )
    async with connection(fresh_dsn) as conn:
        first = await migrate.install(conn)
        assert [m.version for m in first.applied] == [m.version for m in migrate.bundled()]
        second = await migrate.install(conn, [*migrate.bundled(), test_only])
        assert second.applied == [test_only]
        assert second.version == 9001
        third = await migrate.install(conn, [*migrate.bundled(), test_only])
        assert third.applied == []
        assert await migrate.current_version(conn) == 9001
    assert "test_only" in tables(fresh_dsn, "tasks")


async def test_failed_migration_leaves_nothing_behind(fresh_dsn: str) -> None:
    broken = migrate.Migration(9002, "broken", "CREATE TABLE tasks.half (id int); SELECT 1/0")
    async with connection(fresh_dsn) as conn:
        with pytest.raises(psycopg.errors.DivisionByZero):
            await migrate.install(conn, [*migrate.bundled(), broken])
        await conn.rollback()
        assert await migrate.current_version(conn) is None
    assert tables(fresh_dsn, "tasks") == set()
