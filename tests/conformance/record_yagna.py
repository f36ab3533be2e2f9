"""Record what the real yagna daemon answers to the conformance cases (``make record-yagna``).

The daemon (``golem-node`` on PyPI ships the binary; it is not a project dependency) runs
offline in a network namespace of its own that has only a loopback interface, so nothing
it tries can leave the machine: its relay, payment RPC endpoints, release check and
metrics all point at a closed loopback port. With no chain, ``yagna payment status`` can
only fail (its output shape comes from yagna's source, see ``golem_tasks/devnet/yagna_cli``).
The answers (status, content type, shape; never volatile values) and the CLI's outputs (with
ids, keys and times replaced by placeholders) go to ``tests/conformance/yagna-<ver>.json``.

Usage: ``python -m tests.conformance.record_yagna --yagna PATH/TO/yagna [--output FILE]``.
Needs ``unshare`` (util-linux) and ``ip`` (iproute2), and root or user namespaces.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.conformance.cases import Answer, Case, body_shape, cases, run_cases, shape

logger = logging.getLogger("record_yagna")

HERE = Path(__file__).resolve().parent
INSIDE_ENV = "GOLEM_CONFORMANCE_NETNS"
APP_KEY = "conformance0123456789abcdef"
#: Chains whose RPC endpoints the daemon knows (``{CHAIN}_GETH_ADDR``); all on loopback.
CHAINS = (
    "MAINNET",
    "GOERLI",
    "HOLESKY",
    "MUMBAI",
    "POLYGON",
    "AMOY",
    "SEPOLIA",
    "HOODI",
    "RINKEBY",
)
#: (arguments, what a real requestor tool runs) recorded from the CLI.
CLI_COMMANDS: list[list[str]] = [
    ["id", "show"],
    ["id", "show", "--json"],
    ["--json", "id", "show"],
    ["app-key", "list"],
    ["app-key", "list", "--json"],
    ["--json", "app-key", "list"],
    ["payment", "status", "--network", "holesky", "--driver", "erc20"],
    ["payment", "status", "--network", "holesky", "--driver", "erc20", "--json"],
    ["--json", "payment", "status", "--network", "holesky", "--driver", "erc20"],
    ["payment", "status", "--network", "holesky"],
    ["payment", "status", "--json", "--network", "holesky"],
]


# ---------------------------------------------------------------------- isolation


def reexec_in_namespace() -> None:
    """Run this script again inside a new network namespace holding only loopback."""
    unshare = shutil.which("unshare")
    if unshare is None:
        sys.exit("record_yagna needs unshare (util-linux)")
    flags = ["--net"] if os.geteuid() == 0 else ["--user", "--map-root-user", "--net"]
    env = {**os.environ, INSIDE_ENV: "1"}
    argv = [
        unshare,
        *flags,
        "--",
        sys.executable,
        "-m",
        "tests.conformance.record_yagna",
        *sys.argv[1:],
    ]
    os.execve(unshare, argv, env)


def bring_up_loopback() -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    interfaces = [
        line.split(":")[0].strip() for line in Path("/proc/net/dev").read_text().splitlines()[2:]
    ]
    if interfaces != ["lo"]:
        sys.exit(f"refusing to start yagna: this namespace has interfaces {interfaces}")


def closed_port() -> int:
    """A loopback port nobody listens on (bound and released: nothing listens there)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------------- the daemon


def yagna_env(workdir: Path, api_port: int) -> dict[str, str]:
    closed = f"127.0.0.1:{closed_port()}"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
        "YAGNA_DATADIR": str(workdir / "data"),
        "GSB_URL": f"unix:{workdir / 'gsb.sock'}",
        "YAGNA_API_URL": f"http://127.0.0.1:{api_port}",
        "YAGNA_AUTOCONF_APPKEY": APP_KEY,
        "YA_NET_TYPE": "hybrid",
        "YA_NET_RELAY_HOST": closed,
        "YA_NET_BIND_URL": "udp://127.0.0.1:0",
        "YAGNA_METRICS_URL": f"http://{closed}/",
        # The release check (GitHub) and anything else over HTTP(S) goes to a closed port.
        **{
            name: f"http://{closed}"
            for name in (
                "HTTP_PROXY",
                "HTTPS_PROXY",
                "ALL_PROXY",
                "http_proxy",
                "https_proxy",
                "all_proxy",
            )
        },
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "RUST_LOG": "info",
    }
    for chain in CHAINS:
        env[f"{chain}_GETH_ADDR"] = f"http://{closed}"
    return env


async def wait_for_api(base: str, process: subprocess.Popen, limit: float = 90.0) -> None:
    deadline = time.monotonic() + limit
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"yagna exited with {process.returncode}")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(
                    base + "/me", headers={"Authorization": f"Bearer {APP_KEY}"}
                ) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.5)
    raise RuntimeError("yagna's REST API did not come up")


def sanitize(text: str, secrets: dict[str, str]) -> str:
    """CLI output with this run's ids, keys and times replaced by placeholders."""
    for name, value in secrets.items():
        text = text.replace(value, "{" + name + "}")
    text = re.sub(
        r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?", "{timestamp}", text
    )
    return text


def run_cli(yagna: str, env: dict[str, str], args: list[str], secrets: dict[str, str]) -> dict:
    done = subprocess.run(
        [yagna, *args],
        env={**env, "RUST_BACKTRACE": "0"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    entry: dict[str, Any] = {
        "args": args,
        "exit_code": done.returncode,
        "stdout": sanitize(done.stdout, secrets),
    }
    if done.returncode != 0:
        entry["stderr"] = sanitize(done.stderr, secrets)[-2000:]
    with contextlib.suppress(ValueError):
        entry["json_shape"] = shape(json.loads(done.stdout))
    return entry


async def ask_daemon(base: str, process: subprocess.Popen) -> dict[str, Answer]:
    await wait_for_api(base, process)
    logger.info("yagna up at %s", base)
    await asyncio.sleep(3)  # the payment driver registers its platforms meanwhile
    return await run_cases(base, APP_KEY, cases())


def recorded_case(case: Case, answer: Answer, secrets: dict[str, str]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": case.name,
        "method": case.method,
        "path": case.path,
        "status": answer.status,
        "content_type": answer.content_type,
        "shape": body_shape(answer),
    }
    # For people reading the file: what yagna said (never compared).
    if isinstance(answer.body, dict) and isinstance(answer.body.get("message"), str):
        entry["message"] = sanitize(answer.body["message"], secrets)[:300]
    elif isinstance(answer.body, str):
        entry["text"] = sanitize(answer.body, secrets)[:300]
    return entry


def record(yagna: str, output: Path) -> None:
    version = subprocess.run(
        [yagna, "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    workdir = Path(tempfile.mkdtemp(prefix="yagna-conformance-"))
    api_port = closed_port()
    env = yagna_env(workdir, api_port)
    (workdir / "data").mkdir()
    log_path = workdir / "yagna.log"
    base = f"http://127.0.0.1:{api_port}"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [yagna, "service", "run", "--disable-metrics-push", "--api-url", base],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        answers = asyncio.run(ask_daemon(base, process))
        me = answers["me"].body if isinstance(answers["me"].body, dict) else {}
        secrets = {"app_key": APP_KEY}
        if isinstance(me.get("identity"), str):
            secrets["node_id"] = me["identity"]
        recorded = [recorded_case(c, answers[c.name], secrets) for c in cases()]
        cli = [run_cli(yagna, env, args, secrets) for args in CLI_COMMANDS]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    document = {
        "yagna": version,
        "recorded": time.strftime("%Y-%m-%d", time.gmtime()),
        "how": "python -m tests.conformance.record_yagna (make record-yagna)",
        "cases": recorded,
        "cli": cli,
    }
    output.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
    logger.info(
        "recorded %d answers and %d CLI outputs in %s (daemon log: %s)",
        len(recorded),
        len(cli),
        output,
        log_path,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--yagna", default=shutil.which("yagna") or "yagna")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    if os.environ.get(INSIDE_ENV) != "1":
        reexec_in_namespace()
    bring_up_loopback()
    yagna = str(Path(args.yagna).resolve())
    version = subprocess.run(
        [yagna, "--version"], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    output = args.output or HERE / f"yagna-{version}.json"
    record(yagna, output)


if __name__ == "__main__":
    main()
