"""Test app where one task among many returns a result PostgreSQL cannot store: task n
runs `echo n` on the provider and returns n, except task BAD_NUL (a NUL character in its
output) — and whatever the test's own trigger refuses.

Environment: ONE_BAD_TASKS (default 24), BAD_NUL (default 5).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from golem.payload import RepositoryVmPayload
from golem.resources import Activity, Run

PAYLOAD = RepositoryVmPayload("9a3b5d67b0b27746283cb5f287c13eab1beaa12d92a9f536b747c7ae")
TASK_TIMEOUT = 60.0
MAX_ATTEMPTS = 2
TASKS = int(os.environ.get("ONE_BAD_TASKS", "24"))
BAD_NUL = int(os.environ.get("BAD_NUL", "5"))


def get_tasks(run_id: str) -> Iterator[dict[str, int]]:
    return ({"id": n, "n": n} for n in range(TASKS))


async def execute_task(activity: Activity, data: dict[str, Any]) -> Any:
    n = data["n"]
    batch = await activity.execute_commands(Run(f"echo {n}"))
    await batch.wait(timeout=30)
    out = (batch.events[-1].stdout or "").strip()
    if n == BAD_NUL:
        return {"stdout": f"{out}\x00tail"}
    return int(out)
