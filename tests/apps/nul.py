"""Test app whose tasks hand PostgreSQL what it cannot store: task n runs `echo n` on the
provider, then n % 3 == 1 returns its output with a NUL character, n % 3 == 2 raises an
error whose text has one, n % 3 == 0 returns n.

Environment: NUL_TASKS (default 6), NUL_MAX_ATTEMPTS (default 2).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from golem.payload import RepositoryVmPayload
from golem.resources import Activity, Run

PAYLOAD = RepositoryVmPayload("9a3b5d67b0b27746283cb5f287c13eab1beaa12d92a9f536b747c7ae")
TASK_TIMEOUT = 60.0
MAX_ATTEMPTS = int(os.environ.get("NUL_MAX_ATTEMPTS", "2"))
TASKS = int(os.environ.get("NUL_TASKS", "6"))


def get_tasks(run_id: str) -> Iterator[dict[str, int]]:
    return ({"id": n, "n": n} for n in range(TASKS))


async def execute_task(activity: Activity, data: dict[str, Any]) -> Any:
    n = data["n"]
    batch = await activity.execute_commands(Run(f"echo {n}"))
    await batch.wait(timeout=30)
    out = (batch.events[-1].stdout or "").strip()
    if n % 3 == 1:
        return {"stdout": f"{out}\x00tail"}
    if n % 3 == 2:
        raise RuntimeError(f"program said {out}\x00 and stopped")
    return int(out)
