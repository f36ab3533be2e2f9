"""One consistent read of everything a user wants to see about a run."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from golem_tasks.db import access
from golem_tasks.db.types import Connection
from golem_tasks.errors import UserError
from golem_tasks.store import ledger
from golem_tasks.store.tasks import TaskCounts


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
    #: Filled only when asked for (the dashboard and reports).
    providers: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)

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

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the speed so far; only when the total is known and work moves."""
        if not self.run["feed_done"] or self.run["finished_at"] is not None:
            return None
        if self.counts.done == 0 or self.elapsed_s <= 0:
            return None
        return self.counts.open / (self.counts.done / self.elapsed_s)


async def resolve_run_id(conn: Connection, run_id: str | None) -> str:
    """The given run, or the most recent one; a user error when there is none."""
    if run_id:
        if await access.one(conn, "get_run", run_id=run_id) is None:
            raise UserError(f"no run {run_id!r} in this database")
        return run_id
    row = await access.one(conn, "latest_run")
    if row is None:
        raise UserError("this database has no runs yet — start one with: golem-tasks run APP")
    return str(row["id"])


async def _counts(conn: Connection, run_id: str) -> TaskCounts:
    """The run's tasks by status, read from its tallies (not from every task row)."""
    row = await access.the_row(conn, "run_task_counts", run_id=run_id)
    return TaskCounts(**{k: int(v) for k, v in row.items()})


async def snapshot(
    conn: Connection,
    run_id: str,
    *,
    activities: int = 20,
    errors: int = 8,
    providers: int = 0,
    timeline: int = 0,
) -> RunSnapshot:
    """The run as of one moment; ``providers`` and ``timeline`` (points) when above 0."""
    async with conn.transaction():
        await access.execute(conn, "read_only_snapshot")
        now = (await access.the_row(conn, "db_now"))["now"]
        run = await access.one(conn, "get_run", run_id=run_id)
        if run is None:
            raise UserError(f"no run {run_id!r} in this database")
        return RunSnapshot(
            run=run,
            counts=await _counts(conn, run_id),
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
            providers=await access.all_rows(conn, "run_providers", run_id=run_id, limit=providers)
            if providers
            else [],
            timeline=await access.all_rows(conn, "run_timeline", run_id=run_id, points=timeline)
            if timeline
            else [],
        )
