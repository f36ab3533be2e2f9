"""``supervise``, ``worker`` and ``run``: running work on Golem."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal, InvalidOperation
from typing import IO, Any, TypeVar

import click

from golem_tasks.appmodule import load_app
from golem_tasks.cli.options import checked_run_id, dsn_option
from golem_tasks.config import YagnaSettings, parse_budget
from golem_tasks.db.connect import connection, require_schema
from golem_tasks.dsn import resolve_dsn
from golem_tasks.errors import UserError
from golem_tasks.pricing import PriceLimits
from golem_tasks.runner import Runner
from golem_tasks.store.tasks import DEFAULT_LEASE_S
from golem_tasks.supervisor import RunOptions, RunOutcome, Supervisor
from golem_tasks.supervisor.supervisor import SupervisorLost
from golem_tasks.yagna import check_yagna

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
#: A worker renews its claims every few seconds: a lease must outlast a couple of renewals.
MIN_LEASE_S = 8.0


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


plain_option = click.option(
    "--plain",
    is_flag=True,
    help="Plain log lines even on a terminal (no live panel, no log file).",
)


def _verbose() -> bool:
    return bool(click.get_current_context().find_root().params.get("verbose"))


@contextlib.contextmanager
def watched(command: str, dsn: str, plain: bool, **panel: Any) -> Iterator[None]:
    """On a terminal: concise events above a live panel, full logs to a file."""
    from golem_tasks.monitor.live import is_terminal, terminal_output

    if plain or not is_terminal():
        yield
        return
    with terminal_output(command, dsn, verbose=_verbose(), **panel):
        yield


def _log_file() -> IO[str] | None:
    """The log file of the live panel, when there is one."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            return handler.stream
    return None


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
        click.option(
            "--run-id",
            callback=checked_run_id,
            help="Resume this run (a new id starts a new run).",
        ),
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
@plain_option
def supervise(standby: bool, plain: bool, **params: Any) -> None:
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
    asyncio.run(check_yagna(supervisor.yagna))
    with watched("supervise", dsn, plain, run_id=lambda: supervisor.run_id):
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
@click.option(
    "--lease",
    "lease_s",
    type=click.FloatRange(min=MIN_LEASE_S),
    default=DEFAULT_LEASE_S,
    show_default=True,
    metavar="SECONDS",
    help="How long a claimed task stays this worker's without renewal (it renews its claims "
    "every few seconds): when its host vanishes, other workers take its tasks after this.",
)
@plain_option
def worker(
    dsn: str | None,
    concurrency: int,
    processes: int,
    queues: tuple[str, ...],
    lease_s: float,
    plain: bool,
) -> None:
    """Drive activities for any run in the database (start as many as you like, anywhere)."""
    from workers.app import run_worker

    resolved = resolve_dsn(dsn).dsn
    _check_schema(resolved)
    asyncio.run(check_yagna(YagnaSettings.from_env()))
    host = socket.gethostname()
    if processes > 1:
        children: list[subprocess.Popen[bytes]] = []
        with watched(
            "worker",
            resolved,
            plain,
            worker_names=lambda: [f"{host}:{child.pid}" for child in children],
        ):
            code = _spawn_workers(resolved, concurrency, processes, queues, lease_s, children)
        sys.exit(code)
    with watched("worker", resolved, plain, worker_names=lambda: [f"{host}:{os.getpid()}"]):
        asyncio.run(run_worker(resolved, queues=queues, concurrency=concurrency, lease_s=lease_s))


def _spawn_workers(
    dsn: str,
    concurrency: int,
    processes: int,
    queues: tuple[str, ...],
    lease_s: float,
    children: list[subprocess.Popen[bytes]],
) -> int:
    """One worker per process; a stop signal to this one is passed on to them all.

    Under a live panel the children's log lines go where this process's logs go (its
    log file), not onto the panel. The DSN (which may hold a password) goes to the
    children in their environment, never on their command lines, which any user of the
    host can read.
    """
    args = [sys.executable, "-m", "golem_tasks"]
    if _verbose():
        args.append("-v")
    args += ["worker", "--plain", "--concurrency", str(concurrency), "--lease", str(lease_s)]
    for name in queues:
        args += ["--queue", name]
    log_file = _log_file()
    env = {**os.environ, "GOLEM_TASKS_DSN": dsn}
    # Own sessions: a terminal's Ctrl+C reaches this process only, which passes it on once.
    children += [
        subprocess.Popen(
            args,
            env=env,
            start_new_session=True,
            stdout=log_file,
            stderr=subprocess.STDOUT if log_file else None,
        )
        for _ in range(processes)
    ]

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
@plain_option
def run(devnet_providers: int | None, plain: bool, **params: Any) -> None:
    """Supervise APP and work on it in this process; Ctrl+C stops everything cleanly."""
    options = make_options(params, local_only=True)
    app = load_app(options.app, require_execute_task=False)  # bad app: one line, nothing written
    dsn = resolve_dsn(params["dsn"]).dsn
    _check_schema(dsn)
    if devnet_providers is None:
        asyncio.run(check_yagna(YagnaSettings.from_env()))
    # The runner and its supervisor are handed the app and the schema checked here.
    runner = Runner.from_options(
        options, dsn=dsn, devnet_providers=devnet_providers, checked_app=app
    )

    def run_id() -> str | None:
        return runner.supervisor.run_id if runner.supervisor is not None else None

    with watched("run", dsn, plain, run_id=run_id):
        outcome = run_until_signalled(runner.main, runner.stop)
    report(outcome, dsn)
