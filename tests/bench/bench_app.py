"""The benchmark workload as a golem-tasks app: task n runs ``sleep S; echo -n $((n*7))``,
the very command of the bare golem-core loop (``tests.bench.bare_loop``).

Environment: BENCH_TASKS (default 100), BENCH_SLEEP (seconds, default 0), BENCH_ENDLESS
(1: an endless ``get_tasks``), BENCH_LOCAL (1: the result is computed here without calling
the activity, to measure everything but Golem).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from typing import Any

from golem.payload import RepositoryVmPayload
from golem.resources import Activity, Run

from tests.bench.bare_loop import IMAGE, command

PAYLOAD = RepositoryVmPayload(IMAGE)
TASK_TIMEOUT = 60

TASKS = int(os.environ.get("BENCH_TASKS", "100"))
SLEEP = float(os.environ.get("BENCH_SLEEP", "0"))
ENDLESS = os.environ.get("BENCH_ENDLESS") == "1"
LOCAL = os.environ.get("BENCH_LOCAL") == "1"


def get_tasks(run_id: str) -> Iterator[dict[str, int]]:
    numbers = itertools.count() if ENDLESS else range(TASKS)
    return ({"n": n} for n in numbers)


async def execute_task(activity: Activity, data: dict[str, Any]) -> int:
    n = data["n"]
    if LOCAL:
        return n * 7
    batch = await activity.execute_commands(Run(command(n, SLEEP)))
    await batch.wait(timeout=60)
    stdout = batch.events[-1].stdout
    if stdout != str(n * 7):
        raise RuntimeError(f"task {n}: wrong result {stdout!r}")
    return n * 7
