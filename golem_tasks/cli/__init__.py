"""The ``golem-tasks`` command line."""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from golem_tasks import __version__
from golem_tasks.cli.admin import db, install
from golem_tasks.cli.devnet import devnet
from golem_tasks.cli.monitor import dashboard, list_runs, report, results, show, summary
from golem_tasks.cli.runs import run, supervise, worker
from golem_tasks.errors import UserError

logger = logging.getLogger("golem_tasks")


class Cli(click.Group):
    """Turns user errors into one line on stderr and exit status 2 (tracebacks with -v)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UserError as exc:
            if ctx.find_root().params.get("verbose"):
                logger.exception("user error")
            click.echo(f"golem-tasks: error: {exc}", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Show debug logs and tracebacks.")
@click.version_option(__version__, prog_name="golem-tasks")
def cli(verbose: bool) -> None:
    """Run large batches of tasks on the Golem Network, with every fact kept in PostgreSQL."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not verbose:
        for noisy in ("procrastinate", "golem", "aiohttp.access"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        # Its warnings are every reconnection attempt while a database restarts; ours say
        # it once.
        logging.getLogger("psycopg.pool").setLevel(logging.ERROR)


for command in (
    install,
    db,
    supervise,
    worker,
    run,
    list_runs,
    summary,
    show,
    results,
    dashboard,
    report,
):
    cli.add_command(command)
cli.add_command(devnet)


def main() -> None:
    cli(prog_name="golem-tasks")
