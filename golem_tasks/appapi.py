"""What an app's own code may ask of the run while it runs.

``results_cnt(run_id)`` runs inside the supervisor, which holds the run's database pool;
an app that counts results its own way (yacat counts found passwords, not finished tasks)
reads them here instead of opening its own connection.
"""

from __future__ import annotations

from contextvars import ContextVar

from golem_tasks.db.types import Pool
from golem_tasks.store import tasks

#: The pool of the run whose app code is being called (set by the supervisor).
current_pool: ContextVar[Pool | None] = ContextVar("current_pool", default=None)


async def count_results(run_id: str, having: str) -> int:
    """Done tasks of the run whose result is an object with a non-null ``having`` field.

    Only callable from app code the supervisor runs (``results_cnt``).
    """
    pool = current_pool.get()
    if pool is None:
        raise RuntimeError("count_results() is only available inside results_cnt(run_id)")
    async with pool.connection() as conn:
        return await tasks.count_results_having(conn, run_id, having)
