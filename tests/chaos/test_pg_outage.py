"""PostgreSQL goes away mid-run (`golem-tasks db stop`, then `db start`): the supervisor
and the workers wait for it, keep (or safely retake) the run's lock, and finish the run
with every task done once, every document decided and nothing left alive.

`make chaos` stops it for 60 s; `make test` runs a smoke with a few seconds.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import pytest

from golem_tasks.db.embedded import EmbeddedPostgres
from tests.conftest import FAST_SETTINGS
from tests.helpers import cli_env, run_cli
from tests.integration.pipeline_support import (
    APP,
    Cli,
    devnet,
    env_for,
    rows,
    value,
    wait_for,
)
from tests.support.audit import audit_run

RUN = "outage"


async def outage_run(tmp_path: Path, *, tasks: int, outage_s: float) -> dict[str, object]:
    home = Path(tempfile.mkdtemp(prefix="gt-outage-"))
    server = EmbeddedPostgres(home, settings=FAST_SETTINGS)
    dsn = await asyncio.to_thread(server.start)
    budget = Decimal("5")
    try:
        result = await asyncio.to_thread(run_cli, "install", "--dsn", dsn)
        assert result.returncode == 0, result.stderr
        async with devnet(providers=6, seed=31) as net:
            env = env_for(
                net,
                dsn,
                MULTIPLY_TASKS=str(tasks),
                MULTIPLY_SLEEP="1.0",
                GOLEM_TASKS_HOME=str(home),
            )
            started = time.monotonic()
            workers = [
                await Cli.start("worker", "--concurrency", "4", env=env, log=tmp_path / f"w{n}.log")
                for n in range(2)
            ]
            sup = await Cli.start(
                "supervise",
                APP,
                "--workers",
                "4",
                "--run-id",
                RUN,
                "--budget",
                f"{budget}/h",
                "--debit-note-interval",
                "2",
                env=env,
                log=tmp_path / "sup.log",
            )
            try:
                await wait_for(
                    dsn,
                    f"SELECT count(*) FROM tasks.task WHERE run_id = '{RUN}' AND status = 'done'",
                    lambda n: n >= tasks // 3,
                    180,
                )
                db_env = cli_env(GOLEM_TASKS_HOME=str(home))
                stop = await asyncio.to_thread(run_cli, "db", "stop", env=db_env)
                assert stop.returncode == 0, stop.stderr
                down_at = time.monotonic()
                await asyncio.sleep(outage_s)
                for proc in (sup, *workers):
                    assert proc.proc.returncode is None, proc.output()
                start = await asyncio.to_thread(run_cli, "db", "start", env=db_env)
                assert start.returncode == 0, start.stderr
                outage = time.monotonic() - down_at
                code = await sup.wait(600)
                wall = time.monotonic() - started
                assert code == 0, sup.output(120)
                for worker in workers:
                    assert worker.proc.returncode is None, worker.output()
            finally:
                await sup.stop()
                for worker in workers:
                    await worker.stop()
            books = await audit_run(net, dsn, RUN)
        figures = await audit(dsn, tasks, budget)
        figures.update(
            network_spent=books.network_spent,
            debit_notes=books.debit_notes,
            invoices=books.invoices,
            outage_s=round(outage, 1),
            wall_s=round(wall, 1),
        )
        print(f"PostgreSQL outage figures: {figures}")
        return figures
    finally:
        await asyncio.to_thread(server.stop)
        shutil.rmtree(home, ignore_errors=True)


async def audit(dsn: str, tasks: int, budget: Decimal) -> dict[str, object]:
    done = await rows(
        dsn,
        "SELECT key, result FROM tasks.task WHERE run_id = %s AND status = 'done' "
        "ORDER BY position",
        RUN,
    )
    assert [(t["key"], t["result"]) for t in done] == [(str(n), n * 7) for n in range(tasks)]
    batches = await value(dsn, "SELECT count(*) FROM tasks.batch WHERE run_id = %s", RUN)
    spent = await value(
        dsn,
        "SELECT coalesce(sum(increment), 0) FROM ("
        " SELECT increment FROM tasks.debit_note WHERE run_id = %s AND status = 'accepted'"
        " UNION ALL"
        " SELECT increment FROM tasks.invoice WHERE run_id = %s AND status = 'accepted') s",
        RUN,
        RUN,
    )
    assert spent <= budget
    live = await value(
        dsn,
        "SELECT count(*) FROM tasks.agreement WHERE run_id = %s AND status IN "
        "('pending', 'approved')",
        RUN,
    )
    assert live == 0
    open_activities = await value(
        dsn,
        "SELECT count(*) FROM tasks.activity WHERE run_id = %s AND status NOT IN "
        "('stopped', 'failed')",
        RUN,
    )
    assert open_activities == 0
    avoided = await value(
        dsn,
        "SELECT count(*) FROM tasks.agreement WHERE run_id = %s AND avoid_reason IS NOT NULL",
        RUN,
    )
    return {
        "tasks": tasks,
        "done": len(done),
        "lost": tasks - len(done),
        "done_twice": 0,  # one row per key, checked above
        "extra_executions": batches - tasks,
        "spent": spent,
        "budget": budget,
        "avoided_providers": avoided,
    }


@pytest.mark.timeout(400)
async def test_postgresql_outage_smoke(tmp_path: Path) -> None:
    await outage_run(tmp_path, tasks=40, outage_s=5)


@pytest.mark.chaos
@pytest.mark.timeout(1200)
async def test_postgresql_down_for_a_minute(tmp_path: Path) -> None:
    scale = int(os.environ.get("CHAOS_SCALE", "1"))
    figures = await outage_run(tmp_path, tasks=100 * scale, outage_s=60)
    assert float(figures["outage_s"]) >= 60  # type: ignore[arg-type]
