"""Options shared by several commands."""

from __future__ import annotations

import click

dsn_option = click.option(
    "--dsn",
    envvar=None,
    metavar="DSN",
    help="PostgreSQL DSN. Default: $GOLEM_TASKS_DSN, else libpq's PG* environment, "
    "else the embedded PostgreSQL.",
)
