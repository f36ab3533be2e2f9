"""How a run ended, as the supervisor reports it to its caller and the exit status."""

from __future__ import annotations

from dataclasses import dataclass

from golem_tasks.store.records import RunStatus
from golem_tasks.store.tasks import TaskCounts

EXIT_OK, EXIT_FAILED_TASKS, EXIT_BUDGET, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 3, 4, 130


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    status: RunStatus  # finished, failed or stopped
    reason: str | None
    counts: TaskCounts
    exit_code: int
