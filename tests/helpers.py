"""Helpers for tests that drive golem-tasks as real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from golem_tasks.db.connect import connection

ROOT = Path(__file__).resolve().parent.parent


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for a CLI subprocess: no DSN or libpq settings leak in from outside."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PG") and key != "GOLEM_TASKS_DSN"
    }
    env.update(extra)
    return env


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``golem-tasks ARGS`` as a real process."""
    return subprocess.run(
        [sys.executable, "-m", "golem_tasks", *args],
        capture_output=True,
        text=True,
        env=env if env is not None else cli_env(),
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )


async def make_run(
    dsn: str, run_id: str = "r1", activities: int = 2, prefix: str = ""
) -> list[str]:
    """A run row with ``activities`` agreements and activities (act0, act1, ..., each id
    after ``prefix``)."""
    async with connection(dsn, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO tasks.run (id, app, workers, budget_per_hour, subnet, payment_platform)"
            " VALUES (%s, 'app', 1, 1, 'public', 'erc20-holesky-tglm')",
            (run_id,),
        )
        ids = []
        for n in range(activities):
            await conn.execute(
                "INSERT INTO tasks.agreement (id, run_id, provider_id) VALUES (%s, %s, 'p')",
                (f"{prefix}ag{n}", run_id),
            )
            await conn.execute(
                "INSERT INTO tasks.activity (id, run_id, agreement_id) VALUES (%s, %s, %s)",
                (f"{prefix}act{n}", run_id, f"{prefix}ag{n}"),
            )
            ids.append(f"{prefix}act{n}")
    return ids
