"""An activity's end, as every process that ends one records it."""

from __future__ import annotations

from golem_tasks import taskstore
from golem_tasks.db import access
from golem_tasks.db.types import Connection
from golem_tasks.errors import storable


async def end_activity(
    conn: Connection,
    activity_id: str,
    *,
    status: str,
    reason: str,
    count_attempt: bool,
) -> None:
    """Give back the tasks it holds and record why it ended, in one transaction.

    ``status`` is ``failed`` when its provider is to blame (the provider is then not hired
    again in this run), ``stopped`` otherwise.
    """
    async with conn.transaction():
        await taskstore.release_activity(
            conn, activity_id, f"activity ended: {reason}", count_attempt=count_attempt
        )
        await access.execute(
            conn, "end_activity", id=activity_id, status=status, reason=storable(reason)
        )
