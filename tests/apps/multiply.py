"""Test app: task n runs `echo $((n * 7))` on the provider (after an optional sleep).

Environment: MULTIPLY_TASKS (default 50), MULTIPLY_SLEEP (seconds, default 0),
MULTIPLY_FAIL (a task number that always fails), MULTIPLY_ENDLESS (1: never ends),
MULTIPLY_MAX_ATTEMPTS (default 2), MULTIPLY_SLOW (a task number that sleeps 30 s),
MULTIPLY_TIMEOUT (TASK_TIMEOUT, default 60).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from typing import Any

from golem.payload import RepositoryVmPayload
from golem.resources import Activity, Run

PAYLOAD = RepositoryVmPayload("9a3b5d67b0b27746283cb5f287c13eab1beaa12d92a9f536b747c7ae")
TASK_TIMEOUT = float(os.environ.get("MULTIPLY_TIMEOUT", "60"))
MAX_ATTEMPTS = int(os.environ.get("MULTIPLY_MAX_ATTEMPTS", "2"))

TASKS = int(os.environ.get("MULTIPLY_TASKS", "50"))
SLEEP = float(os.environ.get("MULTIPLY_SLEEP", "0"))
FAIL = os.environ.get("MULTIPLY_FAIL")
SLOW = os.environ.get("MULTIPLY_SLOW")
ENDLESS = os.environ.get("MULTIPLY_ENDLESS") == "1"


def get_tasks(run_id: str) -> Iterator[dict[str, int]]:
    numbers = itertools.count() if ENDLESS else range(TASKS)
    return ({"id": n, "n": n} for n in numbers)


async def execute_task(activity: Activity, data: dict[str, Any]) -> int:
    n = data["n"]
    if FAIL is not None and n == int(FAIL):
        command = "echo this task always fails >&2; exit 3"
    elif SLOW is not None and n == int(SLOW):
        command = f"sleep 30; echo $(({n} * 7))"
    else:
        command = f"sleep {SLEEP}; echo $(({n} * 7))" if SLEEP else f"echo $(({n} * 7))"
    batch = await activity.execute_commands(Run(command))
    await batch.wait(timeout=30)
    return int((batch.events[-1].stdout or "").strip())
