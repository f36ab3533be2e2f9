"""Hello world: every task sleeps a second on a provider, then prints its number times 7.

Run it on a local devnet (nothing else needed):

    golem-tasks run examples/hello_world.py --workers 3 --devnet 5

or on the Golem Network through your yagna daemon (YAGNA_APPKEY exported):

    golem-tasks run examples/hello_world.py --workers 3
"""

from __future__ import annotations

import os
from typing import Any

from golem.payload import RepositoryVmPayload
from golem.resources import Activity, Run

#: Only the image hash, as in the original hello world: golem-tasks resolves it through
#: Golem's image repository, or through $GOLEM_TASKS_IMAGE_REPO (the devnet's) when set.
PAYLOAD = RepositoryVmPayload("9a3b5d67b0b27746283cb5f287c13eab1beaa12d92a9f536b747c7ae")

TASK_TIMEOUT = 60
MAX_ATTEMPTS = 3
TASKS = int(os.environ.get("HELLO_WORLD_TASKS", "20"))


def get_tasks(run_id: str) -> Any:
    return ({"n": n} for n in range(TASKS))


async def execute_task(activity: Activity, data: dict[str, int]) -> int:
    batch = await activity.execute_commands(Run(f"sleep 1 && echo $(({data['n']} * 7))"))
    await batch.wait(timeout=30)
    return int((batch.events[-1].stdout or "").strip())
