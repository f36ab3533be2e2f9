"""Chaos: flaky providers, API errors, and worker and supervisor processes killed with
SIGKILL mid-run. Whatever happens, every task ends done exactly once, the budget holds and
the run closes cleanly.

`make chaos` runs the long version (CHAOS_SCALE=10); `make test` runs a short smoke.
"""

from __future__ import annotations

import os
import random
import signal
import time
from decimal import Decimal
from pathlib import Path

import pytest

from tests.integration.pipeline_support import APP, Cli, devnet, env_for, rows, value, wait_for
from tests.support.audit import audit_run

SCALE = int(os.environ.get("CHAOS_SCALE", "1"))

FLAKY = {
    "name": "flaky",
    "count": 6,
    "price_duration_hour": 0.05,
    "faults": {
        "die_after_sec": 4.0,
        "die_probability": 0.3,
        "command_failure": 0.03,
        "error_rate": 0.02,
        "reject_proposal": 0.2,
        "reject_agreement": 0.1,
    },
}
STEADY = {"name": "steady", "count": 4, "price_duration_hour": 0.1}


async def chaos_run(dsn: str, tmp_path: Path, *, tasks: int, kills: int, seed: int) -> None:
    rng = random.Random(seed)
    started = time.monotonic()
    budget = Decimal("5")
    async with devnet([FLAKY, STEADY], seed=seed) as net:
        env = env_for(
            net,
            dsn,
            MULTIPLY_TASKS=str(tasks),
            MULTIPLY_SLEEP="0.2",
            MULTIPLY_MAX_ATTEMPTS="20",
        )
        run = (
            "supervise",
            APP,
            "--workers",
            "6",
            "--run-id",
            "chaos",
            "--budget",
            f"{budget}/h",
            "--debit-note-interval",
            "2",
        )
        logs = iter(range(1000))

        async def start_worker() -> Cli:
            return await Cli.start(
                "worker", "--concurrency", "4", env=env, log=tmp_path / f"worker{next(logs)}.log"
            )

        workers = [await start_worker(), await start_worker()]
        supervisor = await Cli.start(*run, env=env, log=tmp_path / f"sup{next(logs)}.log")
        try:
            for kill in range(kills):
                done = await wait_for(
                    dsn,
                    "SELECT count(*) FROM tasks.task WHERE run_id = 'chaos' AND status = 'done'",
                    lambda n, k=kill: n >= tasks * (k + 1) // (kills + 2),
                    240,
                )
                if supervisor.proc.returncode is not None:
                    break
                if kill % 2 == 0:
                    victim = rng.randrange(len(workers))
                    workers[victim].signal(signal.SIGKILL)
                    await workers[victim].wait()
                    workers[victim] = await start_worker()
                else:
                    supervisor.signal(signal.SIGKILL)
                    await supervisor.wait()
                    supervisor = await Cli.start(
                        *run, env=env, log=tmp_path / f"sup{next(logs)}.log"
                    )
                print(f"kill {kill} at {done} done")
            code = await supervisor.wait(600)
            assert code == 0, supervisor.output()
        finally:
            await supervisor.stop()
            for worker in workers:
                await worker.stop()
        figures = await audit_run(net, dsn, "chaos")
        print(f"chaos seed {seed}: {figures.line()}; {time.monotonic() - started:.0f}s")
    tasks_rows = await rows(
        dsn, "SELECT key, status, result FROM tasks.task WHERE run_id = 'chaos' ORDER BY position"
    )
    assert [(t["key"], t["status"], t["result"]) for t in tasks_rows] == [
        (str(n), "done", n * 7) for n in range(tasks)
    ]
    spent = await value(
        dsn,
        """
        SELECT coalesce(sum(increment), 0) FROM (
            SELECT increment FROM tasks.debit_note WHERE run_id = 'chaos' AND status = 'accepted'
            UNION ALL
            SELECT increment FROM tasks.invoice WHERE run_id = 'chaos' AND status = 'accepted')
        AS spent""",
    )
    assert spent <= budget
    live = await value(
        dsn,
        "SELECT count(*) FROM tasks.agreement WHERE run_id = 'chaos' "
        "AND status IN ('pending', 'approved')",
    )
    assert live == 0
    failed_activities = await value(
        dsn, "SELECT count(*) FROM tasks.activity WHERE run_id = 'chaos' AND status = 'failed'"
    )
    print(f"{tasks} tasks, {failed_activities} activities failed, {spent} spent")


@pytest.mark.timeout(600)
async def test_chaos_smoke(installed_dsn: str, tmp_path: Path) -> None:
    await chaos_run(installed_dsn, tmp_path, tasks=60, kills=2, seed=21)


@pytest.mark.chaos
@pytest.mark.timeout(3600)
async def test_chaos_long(installed_dsn: str, tmp_path: Path) -> None:
    await chaos_run(installed_dsn, tmp_path, tasks=200 * SCALE, kills=2 + SCALE, seed=22)


@pytest.mark.chaos
@pytest.mark.timeout(1200)
async def test_chaos_tight_budget(installed_dsn: str, tmp_path: Path) -> None:
    """A budget that ends the run midway, with a worker and the supervisor killed on the
    way: the run stops for the budget (exit 3) and still pays every document of the work
    it ordered; none is rejected, none left undecided, the ledger equals the network."""
    started = time.monotonic()
    budget = Decimal("0.02")
    metered = {"price_duration_hour": 0.36, "price_cpu_hour": 0.0}
    groups = [{**FLAKY, **metered}, {**STEADY, **metered}]
    async with devnet(groups, seed=23) as net:
        env = env_for(
            net,
            installed_dsn,
            MULTIPLY_TASKS="2000",
            MULTIPLY_SLEEP="0.2",
            MULTIPLY_MAX_ATTEMPTS="20",
        )
        run = (
            "supervise",
            APP,
            "--workers",
            "6",
            "--run-id",
            "chaos",
            "--budget",
            f"{budget}/h",
            "--debit-note-interval",
            "2",
        )
        logs = iter(range(1000))

        async def start(*args: str) -> Cli:
            return await Cli.start(*args, env=env, log=tmp_path / f"p{next(logs)}.log")

        workers = [await start("worker", "--concurrency", "4") for _ in range(2)]
        supervisor = await start(*run)
        done = "SELECT count(*) FROM tasks.task WHERE run_id = 'chaos' AND status = 'done'"
        try:
            await wait_for(installed_dsn, done, lambda n: n >= 40, 240)
            workers[0].signal(signal.SIGKILL)
            await workers[0].wait()
            workers[0] = await start("worker", "--concurrency", "4")
            await wait_for(installed_dsn, done, lambda n: n >= 80, 240)
            supervisor.signal(signal.SIGKILL)
            await supervisor.wait()
            supervisor = await start(*run)
            assert await supervisor.wait(600) == 3, supervisor.output()
        finally:
            await supervisor.stop()
            for worker in workers:
                await worker.stop()
        figures = await audit_run(net, installed_dsn, "chaos")
    print(f"chaos tight budget: {figures.line()}; {time.monotonic() - started:.0f}s")
    assert figures.rejected == 0 and 0 < figures.accepted <= budget
    assert figures.done < 2000 and figures.duplicated == 0
