"""The ``golem-tasks`` command line."""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import click

from golem_tasks import __version__
from golem_tasks.errors import UserError

logger = logging.getLogger("golem_tasks")

#: Where each command lives, imported only when it is used: ``summary`` and ``show`` need
#: neither golem-core nor the supervisor, whose imports cost most of a second.
COMMANDS = {
    "install": "golem_tasks.cli.admin:install",
    "db": "golem_tasks.cli.admin:db",
    "supervise": "golem_tasks.cli.runs:supervise",
    "worker": "golem_tasks.cli.runs:worker",
    "run": "golem_tasks.cli.runs:run",
    "runs": "golem_tasks.cli.monitor:list_runs",
    "summary": "golem_tasks.cli.monitor:summary",
    "show": "golem_tasks.cli.monitor:show",
    "results": "golem_tasks.cli.monitor:results",
    "dashboard": "golem_tasks.cli.monitor:dashboard",
    "report": "golem_tasks.cli.monitor:report",
    "devnet": "golem_tasks.cli.devnet:devnet",
}


class Cli(click.Group):
    """Turns user errors into one line on stderr and exit status 2 (tracebacks with -v);
    loads each command's module when the command is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, name = COMMANDS[cmd_name].split(":")
        command = getattr(importlib.import_module(module), name)
        assert isinstance(command, click.Command) and command.name == cmd_name
        return command

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


def main() -> None:
    cli(prog_name="golem-tasks")
