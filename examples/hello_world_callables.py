"""Hello world in the original golem-tasks style: get_tasks yields callables that take an
activity. Such tasks stay in the process that made them, so run this with `golem-tasks run`
(not supervise + worker):

    golem-tasks run examples/hello_world_callables.py --workers 3 --devnet 5
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator

from golem.payload import RepositoryVmPayload
from golem.resources import Activity, Run

PAYLOAD = RepositoryVmPayload("9a3b5d67b0b27746283cb5f287c13eab1beaa12d92a9f536b747c7ae")


def get_tasks(run_id: str) -> Iterator[Callable[[Activity], Awaitable[int]]]:
    for n in range(10):

        async def task(activity: Activity, n: int = n) -> int:
            batch = await activity.execute_commands(Run(f"sleep 1 && echo $(({n} * 7))"))
            await batch.wait(timeout=30)
            return int((batch.events[-1].stdout or "").strip())

        yield task
