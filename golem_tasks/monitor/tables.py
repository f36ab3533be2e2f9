"""The plain tables the CLI lists: the most recent runs, and every task of a run."""

from __future__ import annotations

from golem_tasks.db import access
from golem_tasks.db.types import Connection, Row


async def recent_runs(conn: Connection, limit: int) -> list[Row]:
    """The most recent runs, newest first, as ``golem-tasks runs`` lists them."""
    return await access.all_rows(conn, "list_runs", limit=limit)


async def task_results(conn: Connection, run_id: str) -> list[Row]:
    """Every task of the run: key, status, result, attempts, error, activity."""
    return await access.all_rows(conn, "task_results", run_id=run_id)
