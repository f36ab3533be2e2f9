"""The run's error log (tasks.error): every failure worth telling a user about."""

from __future__ import annotations

from golem_tasks.db import access
from golem_tasks.db.types import Connection
from golem_tasks.errors import storable


async def record(
    conn: Connection,
    run_id: str,
    *,
    source: str,
    kind: str,
    message: str,
    agreement_id: str | None = None,
    activity_id: str | None = None,
    task_id: int | None = None,
) -> None:
    await access.execute(
        conn,
        "record_error",
        run_id=run_id,
        source=source,
        kind=kind,
        message=storable(message),
        agreement_id=agreement_id,
        activity_id=activity_id,
        task_id=task_id,
    )
