"""One consistent read of everything a user wants to see about a run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg

from golem_tasks import ledger, taskstore
from golem_tasks.db import access
from golem_tasks.errors import UserError
from golem_tasks.taskstore import TaskCounts


@dataclass(frozen=True)
class RunSnapshot:
    run: dict[str, Any]
    counts: TaskCounts
    spend: dict[str, Any]
    spent_last_hour: Decimal
    market: dict[str, Any]
    activities: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    results: list[dict[str, Any]]
    timings: dict[str, Any]
    now: datetime

    @property
    def elapsed_s(self) -> float:
        end = self.run["finished_at"] or self.now
        return max(0.0, (end - self.run["created_at"]).total_seconds())

    @property
    def tasks_per_min(self) -> float:
        return self.counts.done / self.elapsed_s * 60 if self.elapsed_s > 0 else 0.0

    @property
    def cost_per_result(self) -> Decimal | None:
        accepted = Decimal(self.spend["accepted"])
        return accepted / self.counts.done if self.counts.done else None


async def resolve_run_id(conn: psycopg.AsyncConnection, run_id: str | None) -> str:
    """The given run, or the most recent one; a user error when there is none."""
    if run_id:
        if await access.one(conn, "get_run", run_id=run_id) is None:
            raise UserError(f"no run {run_id!r} in this database")
        return run_id
    row = await access.one(conn, "latest_run")
    if row is None:
        raise UserError("this database has no runs yet — start one with: golem-tasks run APP")
    return str(row["id"])


async def snapshot(
    conn: psycopg.AsyncConnection, run_id: str, *, activities: int = 20, errors: int = 8
) -> RunSnapshot:
    async with conn.transaction():
        await access.execute(conn, "read_only_snapshot")
        now = (await access.one(conn, "db_now"))["now"]
        run = await access.one(conn, "get_run", run_id=run_id)
        if run is None:
            raise UserError(f"no run {run_id!r} in this database")
        return RunSnapshot(
            run=run,
            counts=await taskstore.counts(conn, run_id),
            spend=await access.one(conn, "run_spend", run_id=run_id) or {},
            spent_last_hour=await ledger.spent_last_hour(conn, run_id, now),
            market=await access.one(conn, "run_market", run_id=run_id) or {},
            activities=await access.all_rows(
                conn, "run_activities", run_id=run_id, limit=activities
            ),
            errors=await access.all_rows(conn, "recent_errors", run_id=run_id, limit=errors),
            results=await access.all_rows(conn, "results_history", run_id=run_id, limit=30),
            timings=await access.one(conn, "task_timings", run_id=run_id) or {},
            now=now,
        )
