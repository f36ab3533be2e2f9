"""``supervise``, ``worker`` and ``run``: running work on Golem."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import click

from golem_tasks.appmodule import load_app
from golem_tasks.cli.options import dsn_option
from golem_tasks.config import YagnaSettings, parse_budget
from golem_tasks.db.connect import connection, require_schema
from golem_tasks.dsn import resolve_dsn
from golem_tasks.errors import UserError
from golem_tasks.pricing import PriceLimits
from golem_tasks.runner import Runner
from golem_tasks.supervisor import RunOptions, RunOutcome, Supervisor
from golem_tasks.supervisor.supervisor import SupervisorLost

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def _decimal(ctx: click.Context, param: click.Parameter, value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise click.BadParameter(f"{value!r} is not a number") from None
    if not number.is_finite() or number < 0:
        raise click.BadParameter(f"{value!r} must be a number of 0 or more")
    return number


def _budget(ctx: click.Context, param: click.Parameter, value: str) -> Any:
    try:
        return parse_budget(value)
    except UserError as exc:
        raise click.BadParameter(str(exc)) from None


def run_options(func: F) -> F:
    """The options shared by ``supervise`` and ``run``."""
    decorators = [
        click.argument("app"),
        click.option(
            "--workers",
            type=click.IntRange(min=1),
            default=1,
            show_default=True,
            help="Activities that should be working at once.",
        ),
        click.option("--run-id", help="Resume this run (a new id starts a new run)."),
        dsn_option,
        click.option(
            "--budget",
            default="1/h",
            show_default=True,
            callback=_budget,
            help="Most accepted per hour, as X/h.",
        ),
        click.option(
            "--max-price",
            callback=_decimal,
            help="Stop activities whose average cost per result is above this.",
        ),
        click.option(
            "--warmup",
            type=click.FloatRange(min=0),
            default=300.0,
            show_default=True,
            help="Seconds an activity works before --max-price judges it.",
        ),
        click.option(
            "--max-start-price", callback=_decimal, help="Refuse offers above this start price."
        ),
        click.option(
            "--max-cpu-price",
            callback=_decimal,
            help="Refuse offers above this price per cpu hour.",
        ),
        click.option(
            "--max-env-price", callback=_decimal, help="Refuse offers above this price per hour."
        ),
        click.option("--subnet", help="Market subnet (default $YAGNA_SUBNET or public)."),
        click.option(
            "--payment-network", help="Payment network (default $YAGNA_PAYMENT_NETWORK or holesky)."
        ),
        click.option(
            "--payment-driver", help="Payment driver (default $YAGNA_PAYMENT_DRIVER or erc20)."
        ),
        click.option(
            "--feed-window",
            type=click.IntRange(min=1),
            help="Pending tasks kept in the database (default 10 per worker, at least 100).",
        ),
        click.option(
            "--debit-note-interval",
            type=click.IntRange(min=1),
            default=120,
            show_default=True,
            help="Seconds between the debit notes asked of providers.",
        ),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def make_options(
    params: dict[str, Any], *, local_only: bool = False, standby: bool = False
) -> RunOptions:
    return RunOptions(
        app=params["app"],
        workers=params["workers"],
        run_id=params["run_id"],
        budget=params["budget"],
        max_price=params["max_price"],
        price_limits=PriceLimits(
            params["max_start_price"], params["max_cpu_price"], params["max_env_price"]
        ),
        subnet=params["subnet"],
        payment_network=params["payment_network"],
        payment_driver=params["payment_driver"],
        warmup_s=params["warmup"],
        feed_window=params["feed_window"],
        debit_note_interval_s=params["debit_note_interval"],
        local_only=local_only,
        standby=standby,
    )


def run_until_signalled(
    main: Callable[[], Awaitable[RunOutcome]], on_stop: Callable[[], None]
) -> RunOutcome:
    """Run ``main``; the first Ctrl+C (or SIGTERM) stops it cleanly, the second at once."""

    async def runner() -> RunOutcome:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        signals = {"count": 0}

        def handle() -> None:
            signals["count"] += 1
            if signals["count"] == 1:
                click.echo(
                    "stopping cleanly (ending activities, accepting invoices); "
                    "Ctrl+C again to quit at once",
                    err=True,
                )
                on_stop()
            elif task is not None:
                task.cancel()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, handle)
        try:
            return await main()
        except SupervisorLost as exc:
            # Another supervisor may own the run now: exit at once. What is left to clean
            # up would wait on the database or yagna this process cannot reach.
            click.echo(f"golem-tasks: error: {exc}", err=True)
            logging.shutdown()
            os._exit(exc.exit_code)

    try:
        return asyncio.run(runner())
    except asyncio.CancelledError:
        click.echo("golem-tasks: interrupted; run again with the same --run-id to resume", err=True)
        sys.exit(130)


def report(outcome: RunOutcome, dsn: str) -> None:
    """Print the run's summary and exit with its status."""
    from golem_tasks.cli.monitor import print_summary

    print_summary(dsn, outcome.run_id)
    if outcome.counts.failed:
        click.echo(
            f"{outcome.counts.failed} tasks failed: golem-tasks results --run-id {outcome.run_id}",
            err=True,
        )
    sys.exit(outcome.exit_code)


def _check_schema(dsn: str) -> None:
    async def check() -> None:
        async with connection(dsn) as conn:
            await require_schema(conn, dsn)

    asyncio.run(check())


@click.command()
@run_options
@click.option(
    "--standby",
    is_flag=True,
    help="With --run-id of a running run: wait while its supervisor lives (on any host), "
    "then take over.",
)
def supervise(standby: bool, **params: Any) -> None:
    """Supervise one run of APP: money, market, tasks; workers do the work.

    APP is an importable module name or a path to a .py file.
    """
    if standby and not params["run_id"]:
        raise UserError("--standby needs the --run-id of the run to take over")
    options = make_options(params, standby=standby)
    app = load_app(options.app)  # bad app: one line, nothing written
    dsn = resolve_dsn(params["dsn"]).dsn
    _check_schema(dsn)
    supervisor = Supervisor(options, dsn, app=app, schema_checked=True)
    click.echo(f"run {supervisor.run_id}: supervising {options.app}", err=True)
    outcome = run_until_signalled(supervisor.main, supervisor.request_stop)
    report(outcome, dsn)


@click.command()
@dsn_option
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Activities one worker process drives at once.",
)
@click.option(
    "--processes",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes to start.",
)
@click.option(
    "--queue",
    "queues",
    multiple=True,
    help="procrastinate queues to take jobs from (default: the queue of every supervised "
    "run of this yagna's requestor).",
)
def worker(dsn: str | None, concurrency: int, processes: int, queues: tuple[str, ...]) -> None:
    """Drive activities for any run in the database (start as many as you like, anywhere)."""
    from workers.app import run_worker

    resolved = resolve_dsn(dsn).dsn
    _check_schema(resolved)
    if not YagnaSettings.from_env().app_key:
        raise UserError("YAGNA_APPKEY is not set: export the app key of your yagna daemon")
    if processes > 1:
        sys.exit(_spawn_workers(resolved, concurrency, processes, queues))
    asyncio.run(run_worker(resolved, queues=queues, concurrency=concurrency))


def _spawn_workers(dsn: str, concurrency: int, processes: int, queues: tuple[str, ...]) -> int:
    """One worker per process; a stop signal to this one is passed on to them all."""
    args = [sys.executable, "-m", "golem_tasks", "worker", "--dsn", dsn]
    args += ["--concurrency", str(concurrency)]
    for name in queues:
        args += ["--queue", name]
    # Own sessions: a terminal's Ctrl+C reaches this process only, which passes it on once.
    children = [subprocess.Popen(args, start_new_session=True) for _ in range(processes)]

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    return max(child.wait() for child in children)


@click.command()
@run_options
@click.option(
    "--devnet",
    "devnet_providers",
    type=click.IntRange(min=1),
    metavar="N",
    help="Run against a local devnet of N simulated providers instead of yagna.",
)
def run(devnet_providers: int | None, **params: Any) -> None:
    """Supervise APP and work on it in this process; Ctrl+C stops everything cleanly."""

    options = make_options(params, local_only=True)
    # The runner checks the app and the schema (once) before anything is written.
    dsn = resolve_dsn(params["dsn"]).dsn
    runner = Runner.from_options(options, dsn=dsn, devnet_providers=devnet_providers)
    outcome = run_until_signalled(runner.main, runner.stop)
    report(outcome, dsn)
