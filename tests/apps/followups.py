"""Test app with follow-up tasks: task n prints n * 7; each fed task's result adds
FOLLOWUPS_CHILDREN (default 2) follow-ups, which add none. FOLLOWUPS_TASKS: fed tasks."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from golem.payload import RepositoryVmPayload
from golem.resources import Activity, Run

PAYLOAD = RepositoryVmPayload("9a3b5d67b0b27746283cb5f287c13eab1beaa12d92a9f536b747c7ae")
TASK_TIMEOUT = 60
MAX_ATTEMPTS = 2

TASKS = int(os.environ.get("FOLLOWUPS_TASKS", "4"))
CHILDREN = int(os.environ.get("FOLLOWUPS_CHILDREN", "2"))


def get_tasks(run_id: str) -> Iterator[dict[str, int]]:
    return ({"id": n, "n": n} for n in range(TASKS))


async def execute_task(activity: Activity, data: dict[str, Any]) -> int:
    batch = await activity.execute_commands(Run(f"sleep 0.3; echo $(({data['n']} * 7))"))
    await batch.wait(timeout=30)
    return int(batch.events[-1].stdout.strip())


def on_result(run_id: str, key: str, data: dict[str, Any], result: int) -> list[dict[str, Any]]:
    if data.get("child"):
        return []
    return [{"n": result + c, "child": True} for c in range(CHILDREN)]
