"""The supervisor of a run: money, market, task feeding and dispatch.

``RunOutcome`` and ``Supervisor`` are imported on first use: they pull in golem-core,
which commands that only read the database (``summary``, ``show``) need not load.
"""

from __future__ import annotations

from typing import Any

from golem_tasks.supervisor.options import RunOptions

__all__ = ["RunOptions", "RunOutcome", "Supervisor"]


def __getattr__(name: str) -> Any:
    if name in ("RunOutcome", "Supervisor"):
        from golem_tasks.supervisor import supervisor

        return getattr(supervisor, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
