"""Activities: created and driven by workers, asked to stop by the supervisor, ended."""

from __future__ import annotations

from golem_tasks.db import access
from golem_tasks.db.types import Connection
from golem_tasks.errors import storable
from golem_tasks.store import tasks
from golem_tasks.store.records import Activity, ActivityStatus


async def insert(conn: Connection, *, id: str, run_id: str, agreement_id: str, worker: str) -> None:
    """A new activity, deploying, driven by ``worker``."""
    await access.execute(
        conn, "insert_activity", id=id, run_id=run_id, agreement_id=agreement_id, worker=worker
    )


async def ready(conn: Connection, activity_id: str) -> None:
    await access.execute(conn, "activity_ready", id=activity_id)


async def take_over(conn: Connection, activity_id: str, worker: str, lease_s: float) -> bool:
    """``worker`` starts driving a ready activity, only once its previous worker is gone
    (released it, or stopped renewing its heartbeat for longer than a lease)."""
    row = await access.one(
        conn, "take_over_activity", id=activity_id, worker=worker, lease_s=lease_s
    )
    return row is not None


async def release_driver(conn: Connection, activity_id: str, worker: str) -> None:
    """``worker`` no longer drives the activity (another may take it over)."""
    await access.execute(conn, "release_activity_driver", id=activity_id, worker=worker)


async def end(
    conn: Connection,
    activity_id: str,
    *,
    status: ActivityStatus,
    reason: str,
    count_attempt: bool,
) -> None:
    """Give back the tasks it holds and record why it ended, in one transaction.

    ``status`` is ``failed`` when its provider is to blame (the provider is then not hired
    again in this run), ``stopped`` otherwise.
    """
    async with conn.transaction():
        await tasks.release_activity(
            conn, activity_id, f"activity ended: {reason}", count_attempt=count_attempt
        )
        await access.execute(
            conn, "end_activity", id=activity_id, status=status.value, reason=storable(reason)
        )


async def latest(conn: Connection, agreement_id: str) -> Activity | None:
    """The agreement's latest activity."""
    row = await access.one(conn, "latest_activity", agreement_id=agreement_id)
    return Activity.from_row(row) if row is not None else None


async def request_stop(conn: Connection, activity_id: str, reason: str) -> str | None:
    """Ask the activity's worker to stop it; its agreement's id the first time it is asked,
    ``None`` after (or once it ended)."""
    row = await access.one(conn, "request_activity_stop", id=activity_id, reason=reason)
    return row["agreement_id"] if row is not None else None


async def request_run_stop(conn: Connection, run_id: str, reason: str) -> None:
    """Ask the workers of every live activity of the run to stop it."""
    await access.execute(conn, "request_run_activities_stop", run_id=run_id, reason=reason)


async def clear_stop_requests(conn: Connection, run_id: str) -> None:
    """A resumed run takes its live activities back into work."""
    await access.execute(conn, "clear_stop_requests", run_id=run_id)


async def stop_requests(conn: Connection, activity_ids: list[str]) -> dict[str, str]:
    """Which of these activities to stop now, and why (the supervisor asked, the run ended,
    the agreement is to end)."""
    rows = await access.all_rows(conn, "stop_requests", ids=activity_ids)
    return {row["id"]: row["reason"] for row in rows if row["reason"]}


async def unfinished(conn: Connection, run_id: str) -> list[Activity]:
    rows = await access.all_rows(conn, "unfinished_activities", run_id=run_id)
    return [Activity.from_row(row) for row in rows]
