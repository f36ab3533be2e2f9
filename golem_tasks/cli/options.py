"""Options shared by several commands."""

from __future__ import annotations

import click

from golem_tasks.runid import check_run_id

dsn_option = click.option(
    "--dsn",
    envvar=None,
    metavar="DSN",
    help="PostgreSQL DSN. Default: $GOLEM_TASKS_DSN, else libpq's PG* environment, "
    "else the embedded PostgreSQL.",
)


def checked_run_id(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Refuse a bad ``--run-id`` before anything is read or written (one line, exit 2)."""
    return None if value is None else check_run_id(value)
