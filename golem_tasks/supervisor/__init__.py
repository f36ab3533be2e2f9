"""The supervisor of a run: money, market, task feeding and dispatch."""

from golem_tasks.supervisor.options import RunOptions
from golem_tasks.supervisor.supervisor import RunOutcome, Supervisor

__all__ = ["RunOptions", "RunOutcome", "Supervisor"]
