"""``summary``, ``show`` and ``results``: watching runs from anywhere that has the DSN."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import TextIO

import click
from rich.console import Console, RenderableType
from rich.live import Live

from golem_tasks.cli.options import checked_run_id, dsn_option
from golem_tasks.db.connect import connection, require_schema
from golem_tasks.dsn import resolve_dsn
from golem_tasks.errors import UserError
from golem_tasks.monitor import export, render, tables, views
from golem_tasks.monitor.snapshot import RunSnapshot, resolve_run_id, snapshot

run_id_option = click.option(
    "--run-id", callback=checked_run_id, help="The run (default: the most recent one)."
)
json_option = click.option(
    "--json", "as_json", is_flag=True, help="Machine-readable JSON (fields: docs/watching.md)."
)


def echo_json(view: object) -> None:
    click.echo(json.dumps(view, indent=2))


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
@json_option
def list_runs(dsn: str | None, limit: int, as_json: bool) -> None:
    """The most recent runs in the database, newest first."""
    resolved = resolve_dsn(dsn).dsn

    async def go() -> list[dict[str, object]]:
        async with connection(resolved, autocommit=True) as conn:
            await require_schema(conn, resolved)
            return await tables.recent_runs(conn, limit)

    rows = asyncio.run(go())
    if as_json:
        echo_json(views.runs(rows))
    else:
        Console().print(render.runs(rows))


@click.command()
@dsn_option
@run_id_option
@json_option
def summary(dsn: str | None, run_id: str | None, as_json: bool) -> None:
    """A run at a glance: progress, speed, providers, money."""
    resolved = resolve_dsn(dsn).dsn
    snap = asyncio.run(_snapshot(resolved, run_id))
    if as_json:
        echo_json(views.summary(snap))
    else:
        Console().print(render.summary(snap))


@click.command()
@dsn_option
@run_id_option
@click.option("--follow", "-f", is_flag=True, help="Keep refreshing until Ctrl+C.")
@click.option("--interval", type=click.FloatRange(min=0.2), default=2.0, show_default=True)
@click.option("--activities", type=click.IntRange(min=0), default=20, show_default=True)
@json_option
def show(
    dsn: str | None,
    run_id: str | None,
    follow: bool,
    interval: float,
    activities: int,
    as_json: bool,
) -> None:
    """A run in detail: summary, activities with their cost, recent errors."""
    resolved = resolve_dsn(dsn).dsn
    console = Console()
    if as_json:
        if follow:
            raise click.UsageError("--follow and --json do not go together")
        echo_json(views.detail(asyncio.run(_snapshot(resolved, run_id, activities=activities))))
        return

    def view() -> RenderableType:
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
            rows = await tables.task_results(conn, rid)
        return export.WRITERS[fmt](rows, output)

    count = asyncio.run(go())
    if output.name != "<stdout>":
        click.echo(f"{count} tasks written to {output.name}", err=True)


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6) into its parts."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise click.BadParameter(f"{value!r} is not HOST:PORT (e.g. 127.0.0.1:8080)")
    return host.strip("[]"), int(port)


@click.command()
@dsn_option
@click.option(
    "--listen",
    default="127.0.0.1:8080",
    show_default=True,
    metavar="HOST:PORT",
    help="Where to serve (port 0: any free port). Anything but loopback shows your runs "
    "to other machines.",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.2),
    default=2.0,
    show_default=True,
    help="Seconds between the page's updates.",
)
def dashboard(dsn: str | None, listen: str, interval: float) -> None:
    """A live web page of every run in the database, with /metrics for Prometheus."""
    from aiohttp import web

    from golem_tasks.devnet.runner import is_loopback
    from golem_tasks.monitor.dashboard import create_app

    host, port = parse_listen(listen)
    resolved = resolve_dsn(dsn).dsn
    asyncio.run(_check_schema(resolved))
    if not is_loopback(host):
        click.echo(
            f"WARNING: the dashboard will listen on {host}, reachable from other machines. "
            "Anyone who can reach it sees every run in this database (apps, providers, "
            "spending, errors); it has no login. Keep it on 127.0.0.1 unless you mean it.",
            err=True,
        )

    async def serve() -> None:
        runner = web.AppRunner(create_app(resolved, poll_s=interval), access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            try:
                await site.start()
            except OSError as exc:
                raise UserError(f"cannot listen on {listen}: {exc.strerror or exc}") from None
            for address in runner.addresses:
                shown = f"[{address[0]}]" if ":" in address[0] else address[0]
                click.echo(f"dashboard: http://{shown}:{address[1]}/ (Ctrl+C to stop)")
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


async def _check_schema(dsn: str) -> None:
    async with connection(dsn) as conn:
        await require_schema(conn, dsn)


@click.command()
@dsn_option
@run_id_option
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True),
    required=True,
    help="The HTML file to write.",
)
def report(dsn: str | None, run_id: str | None, output: str) -> None:
    """One self-contained HTML file of a run: the dashboard's page, frozen."""
    from golem_tasks.monitor.dashboard import report as build

    resolved = resolve_dsn(dsn).dsn

    async def go() -> str:
        async with connection(resolved, autocommit=True) as conn:
            await require_schema(conn, resolved)
            return await build(conn, run_id)

    html = asyncio.run(go())
    with open(output, "w", encoding="utf-8") as handle:
        handle.write(html)
    click.echo(f"report written to {output} ({len(html) // 1024} KiB)", err=True)
