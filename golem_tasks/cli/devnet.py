"""``golem-tasks devnet``: run the local Golem network and print the environment to use it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from golem_tasks.devnet.exports import APPKEY_ENV, READY
from golem_tasks.errors import UserError

if TYPE_CHECKING:
    from golem_tasks.devnet.runner import Devnet


@click.command()
@click.option(
    "--providers",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="Number of simulated providers (ignored with --profile).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=7465,
    show_default=True,
    help="Port of the REST API (0 picks a free one).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind. Anything but loopback lets other machines run commands here.",
)
@click.option(
    "--seed", type=int, default=1, show_default=True, help="The same seed gives the same network."
)
@click.option(
    "--profile",
    "profile",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Provider groups, prices and faults (JSON or TOML).",
)
@click.option(
    "--time-scale",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Speed of simulated time (debit notes, expirations).",
)
@click.option(
    "--app-key",
    envvar=APPKEY_ENV,
    help=f"App key clients must send (default: random). Prefer ${APPKEY_ENV}: other local "
    "users can read command lines.",
)
@click.option(
    "--payment-network", help="Payment network (default: $YAGNA_PAYMENT_NETWORK or holesky)."
)
@click.option("--payment-driver", help="Payment driver (default: $YAGNA_PAYMENT_DRIVER or erc20).")
@click.option(
    "--detach",
    is_flag=True,
    help="Run in the background: print the exports (plus GOLEM_DEVNET_PID) and exit.",
)
@click.option(
    "--log-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --detach: where the devnet logs (default: a file in the temp dir).",
)
def devnet(
    providers: int,
    port: int,
    host: str,
    seed: int,
    profile: Path | None,
    time_scale: float,
    app_key: str | None,
    payment_network: str | None,
    payment_driver: str | None,
    detach: bool,
    log_file: Path | None,
) -> None:
    """Run a local Golem network that answers yagna's REST API.

    Prints `export` lines (YAGNA_API_URL, YAGNA_APPKEY, YAGNA_PAYMENT_NETWORK,
    GOLEM_TASKS_IMAGE_REPO, ...) for a shell to eval, then serves until Ctrl+C.
    With --detach: eval "$(golem-tasks devnet --detach)" and later kill $GOLEM_DEVNET_PID.
    """
    from golem_tasks.devnet.runner import Devnet, is_loopback

    source = click.get_current_context().get_parameter_source("app_key")
    if source is click.core.ParameterSource.COMMANDLINE:
        click.echo(
            f"warning: --app-key is visible to other local users (ps); set ${APPKEY_ENV} instead",
            err=True,
        )
    if not is_loopback(host):
        click.echo(
            f"WARNING: the devnet will listen on {host}, reachable from other machines. "
            "Anyone who has the app key can run any command on this machine as this user "
            "(commands are not isolated). Keep it on 127.0.0.1 unless you mean it.",
            err=True,
        )
    if detach:
        _detach(log_file, app_key)
        return
    net = Devnet(
        providers=providers,
        seed=seed,
        port=port,
        profile=profile,
        time_scale=time_scale,
        host=host,
        app_key=app_key,
        payment_network=payment_network,
        payment_driver=payment_driver,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(net))


async def _serve(net: Devnet) -> None:
    try:
        await net.start()
    except OSError as exc:
        raise UserError(
            f"cannot listen on {net.host}:{net.requested_port}: {exc.strerror or exc}"
        ) from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    click.echo(net.export_lines() + READY + " (Ctrl+C to stop)", nl=True)
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        await net.stop()


def _without(args: list[str], option: str) -> list[str]:
    """``args`` without ``option`` (``--opt value`` or ``--opt=value``)."""
    kept: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == option:
            skip = True
        elif not arg.startswith(option + "="):
            kept.append(arg)
    return kept


def _detach(log_file: Path | None, app_key: str | None) -> None:
    """Start the same command in the background and print its exports."""
    args = [a for a in sys.argv[1:] if a != "--detach"]
    args = _without(_without(args, "--log-file"), "--app-key")
    env = dict(os.environ)
    if app_key is not None:
        env[APPKEY_ENV] = app_key  # not in the child's command line
    if log_file is None:
        # A fresh file only this user can read (never one someone prepared for us).
        fd, name = tempfile.mkstemp(prefix="golem-tasks-devnet-", suffix=".log")
        log = os.fdopen(fd, "ab")
        log_path = Path(name)
    else:
        log = log_file.open("ab")
        log_path = log_file
    with log:
        child = subprocess.Popen(
            [sys.executable, "-m", "golem_tasks", *args],
            stdout=subprocess.PIPE,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )
    assert child.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = child.stdout.readline().decode()
        if not line:
            break
        if line.startswith(READY):
            child.stdout.close()
            click.echo("".join(lines), nl=False)
            click.echo(f"export GOLEM_DEVNET_PID={child.pid}")
            click.echo(f"# logs: {shlex.quote(str(log_path))}; stop with: kill $GOLEM_DEVNET_PID")
            return
        lines.append(line)
    child.kill()
    raise UserError(f"the devnet did not start; see {log_path}")
