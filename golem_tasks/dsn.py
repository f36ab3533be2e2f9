"""The DSN rule applied, including starting the embedded PostgreSQL when it is the answer."""

from __future__ import annotations

from golem_tasks.config import DsnChoice, choose_dsn, home_dir
from golem_tasks.db.embedded import EmbeddedPostgres


def embedded_server() -> EmbeddedPostgres:
    return EmbeddedPostgres(home_dir())


def resolve_dsn(option: str | None) -> DsnChoice:
    """``--dsn``, ``GOLEM_TASKS_DSN``, libpq's environment, else the embedded server."""
    choice = choose_dsn(option)
    if choice is not None:
        return choice
    return DsnChoice(embedded_server().start(), "embedded")
