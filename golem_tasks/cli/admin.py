"""``install`` and ``db``: the database itself."""

from __future__ import annotations

import asyncio
import shlex
from typing import Any

import click

from golem_tasks.cli.options import dsn_option
from golem_tasks.config import describe_dsn
from golem_tasks.db import migrate
from golem_tasks.db.connect import connection
from golem_tasks.db.embedded import ListenAddress, parse_listen
from golem_tasks.dsn import embedded_server, resolve_dsn
from golem_tasks.errors import UserError


@click.command()
@dsn_option
def install(dsn: str | None) -> None:
    """Create or upgrade the database schema (safe to repeat)."""
    choice = resolve_dsn(dsn)

    async def go() -> migrate.InstallResult:
        async with connection(choice.dsn) as conn:
            return await migrate.install(conn)

    result = asyncio.run(go())
    where = describe_dsn(choice.dsn)
    if result.applied:
        names = ", ".join(f"{m.version:04d}_{m.name}" for m in result.applied)
        click.echo(f"installed golem-tasks schema version {result.version} in {where} ({names})")
    else:
        click.echo(f"golem-tasks schema in {where} is up to date (version {result.version})")


@click.group()
def db() -> None:
    """Manage the embedded PostgreSQL (used when no DSN is configured)."""


@db.command()
def status() -> None:
    """Say whether the embedded PostgreSQL runs, where, and its DSN."""
    state = embedded_server().status()
    word = f"running (pid {state.pid})" if state.running else "stopped"
    click.echo(f"embedded PostgreSQL: {word}")
    click.echo(f"data directory: {state.data_dir}")
    click.echo(f"DSN: {state.dsn}")
    if state.listen is not None:
        click.echo(f"listening on: {state.listen} (password in {embedded_server().password_file})")
        click.echo(f"DSN for other hosts: {state.remote_dsn}")


def _listen(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    try:
        return parse_listen(value)
    except UserError as exc:
        raise click.BadParameter(str(exc)) from None


@db.command()
@click.option(
    "--listen",
    metavar="ADDR[:PORT]",
    callback=_listen,
    help="Also serve other hosts on this address (TCP, password auth; port 5432 by default) "
    "and print the DSN to give them.",
)
def start(listen: ListenAddress | None) -> None:
    """Start the embedded PostgreSQL (no-op when it runs)."""
    server = embedded_server()
    dsn = server.start(listen=listen)
    click.echo(f"embedded PostgreSQL running: {dsn}")
    remote = server.remote_dsn()
    if remote is not None:
        click.echo("on every other host (workers, standby supervisor, monitoring):")
        click.echo(f"export GOLEM_TASKS_DSN={shlex.quote(remote)}")


@db.command()
def stop() -> None:
    """Stop the embedded PostgreSQL."""
    stopped = embedded_server().stop()
    click.echo("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")
