"""``summary``, ``show`` and ``results``: watching runs from anywhere that has the DSN."""

from __future__ import annotations

import asyncio
import time
from typing import TextIO

import click
from rich.console import Console
from rich.live import Live

from golem_tasks.cli.options import checked_run_id, dsn_option
from golem_tasks.db import access
from golem_tasks.db.connect import connection, require_schema
from golem_tasks.dsn import resolve_dsn
from golem_tasks.monitor import export, render
from golem_tasks.monitor.snapshot import RunSnapshot, resolve_run_id, snapshot

run_id_option = click.option(
    "--run-id", callback=checked_run_id, help="The run (default: the most recent one)."
)


async def _snapshot(dsn: str, run_id: str | None, **limits: int) -> RunSnapshot:
    async with connection(dsn, autocommit=True) as conn:
        await require_schema(conn, dsn)
        resolved = await resolve_run_id(conn, run_id)
        return await snapshot(conn, resolved, **limits)


def print_summary(dsn: str, run_id: str) -> None:
    Console().print(render.summary(asyncio.run(_snapshot(dsn, run_id))))


@click.command(name="runs")
@dsn_option
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
def list_runs(dsn: str | None, limit: int) -> None:
    """The most recent runs in the database, newest first."""
    resolved = resolve_dsn(dsn).dsn

    async def go() -> list[dict[str, object]]:
        async with connection(resolved, autocommit=True) as conn:
            await require_schema(conn, resolved)
            return await access.all_rows(conn, "list_runs", limit=limit)

    Console().print(render.runs(asyncio.run(go())))


@click.command()
@dsn_option
@run_id_option
def summary(dsn: str | None, run_id: str | None) -> None:
    """A run at a glance: progress, speed, providers, money."""
    resolved = resolve_dsn(dsn).dsn
    Console().print(render.summary(asyncio.run(_snapshot(resolved, run_id))))


@click.command()
@dsn_option
@run_id_option
@click.option("--follow", "-f", is_flag=True, help="Keep refreshing until Ctrl+C.")
@click.option("--interval", type=click.FloatRange(min=0.2), default=2.0, show_default=True)
@click.option("--activities", type=click.IntRange(min=0), default=20, show_default=True)
def show(
    dsn: str | None, run_id: str | None, follow: bool, interval: float, activities: int
) -> None:
    """A run in detail: summary, activities with their cost, recent errors."""
    resolved = resolve_dsn(dsn).dsn
    console = Console()

    def view() -> object:
        return render.detail(asyncio.run(_snapshot(resolved, run_id, activities=activities)))

    if not follow:
        console.print(view())
        return
    with Live(view(), console=console, auto_refresh=False) as live:
        try:
            while True:
                time.sleep(interval)
                live.update(view(), refresh=True)
        except KeyboardInterrupt:
            pass


@click.command()
@dsn_option
@run_id_option
@click.option(
    "--format", "fmt", type=click.Choice(sorted(export.WRITERS)), default="jsonl", show_default=True
)
@click.option("--output", "-o", type=click.File("w"), default="-", help="File (default: stdout).")
def results(dsn: str | None, run_id: str | None, fmt: str, output: TextIO) -> None:
    """Every task of a run: key, status, result, attempts, error, activity."""
    resolved = resolve_dsn(dsn).dsn

    async def go() -> int:
        async with connection(resolved) as conn:
            await require_schema(conn, resolved)
            rid = await resolve_run_id(conn, run_id)
            rows = await access.all_rows(conn, "task_results", run_id=rid)
        return export.WRITERS[fmt](rows, output)

    count = asyncio.run(go())
    if output.name != "<stdout>":
        click.echo(f"{count} tasks written to {output.name}", err=True)
