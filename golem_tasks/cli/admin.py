"""``install`` and ``db``: the database itself."""

from __future__ import annotations

import asyncio

import click

from golem_tasks.cli.options import dsn_option
from golem_tasks.config import describe_dsn
from golem_tasks.db import migrate
from golem_tasks.db.connect import connection
from golem_tasks.dsn import embedded_server, resolve_dsn


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


@db.command()
def start() -> None:
    """Start the embedded PostgreSQL (no-op when it runs)."""
    server = embedded_server()
    dsn = server.start()
    click.echo(f"embedded PostgreSQL running: {dsn}")


@db.command()
def stop() -> None:
    """Stop the embedded PostgreSQL."""
    stopped = embedded_server().stop()
    click.echo("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")
