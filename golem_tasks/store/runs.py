"""Runs: creation, resumption, the supervisor's lock and presence, status and end."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from golem_tasks.db import access
from golem_tasks.db.types import Connection
from golem_tasks.store import tasks
from golem_tasks.store.records import Run, RunStatus


@dataclass(frozen=True)
class RunOptions:
    """What the command that starts (or resumes) a run stores of its options."""

    id: str
    app: str
    workers: int
    budget_per_hour: Decimal
    max_price: Decimal | None
    subnet: str
    payment_platform: str
    settings: dict[str, Any]
    queue: str
    requestor_id: str | None


async def try_lock(conn: Connection, run_id: str) -> bool:
    """The run's supervisor lock, held by this connection for its life (a session advisory
    lock: a killed supervisor's connection closes, which releases it)."""
    row = await access.the_row(conn, "supervisor_lock", run_id=run_id)
    return bool(row["locked"])


async def ping(conn: Connection) -> None:
    await access.the_row(conn, "ping")


async def create(conn: Connection, options: RunOptions) -> bool:
    """Store a new run; ``False`` (and nothing written) when the id exists already."""
    return await access.one(conn, "create_run", **asdict(options)) is not None


async def resume(conn: Connection, options: RunOptions) -> None:
    """A resumed run takes the options of the command that resumed it."""
    await access.execute(conn, "resume_run", **asdict(options))


async def get(conn: Connection, run_id: str) -> Run | None:
    row = await access.one(conn, "get_run", run_id=run_id)
    return Run.from_row(row) if row is not None else None


async def progress(conn: Connection, run_id: str) -> tuple[Run, int]:
    """The run's row, then its open tasks, in that order. The feeder stores its last tasks
    before it marks the feed done, so a run read as fully fed is never paired with a count
    from before its last tasks were stored (the other way round, a tick could see every
    task "ended" while the last ones were being stored, and end the run with them pending).
    """
    run = await get(conn, run_id)
    if run is None:
        raise LookupError(f"run {run_id} is not in the database")
    return run, await tasks.open_count(conn, run_id)


async def latest(conn: Connection) -> Run | None:
    row = await access.one(conn, "latest_run")
    return Run.from_row(row) if row is not None else None


async def foreign(conn: Connection, mine: str) -> dict[str, str]:
    """Running runs of another requestor than ``mine``: run id -> their requestor."""
    rows = await access.all_rows(conn, "foreign_runs", mine=mine)
    return {row["id"]: row["requestor_id"] for row in rows}


async def supervisor_seen(conn: Connection, run_id: str, supervisor: str) -> None:
    await access.execute(conn, "supervisor_seen", run_id=run_id, supervisor=supervisor)


async def supervisor_took(conn: Connection, run_id: str, supervisor: str) -> None:
    """``supervisor`` holds the run's lock (again): a new term begins."""
    await access.execute(conn, "supervisor_took", run_id=run_id, supervisor=supervisor)


async def holder(conn: Connection, run_id: str) -> str | None:
    """The supervisor that took the run last (its latest term)."""
    row = await access.one(conn, "run_holder", run_id=run_id)
    return row["supervisor"] if row is not None else None


async def set_status(
    conn: Connection, run_id: str, status: RunStatus, reason: str | None = None
) -> None:
    """A new status (an ended one stamps the end); the reason, when given, replaces the
    stored one."""
    await access.execute(conn, "set_run_status", run_id=run_id, status=status.value, reason=reason)


async def set_feed_done(conn: Connection, run_id: str, done: bool) -> None:
    await access.execute(conn, "set_feed_done", run_id=run_id, done=done)


async def record_results_cnt(conn: Connection, run_id: str, at: datetime, results_cnt: int) -> None:
    await access.execute(conn, "record_results_cnt", run_id=run_id, at=at, results_cnt=results_cnt)
