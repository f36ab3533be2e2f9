"""Hosts for multi-host tests: network namespaces on one private LAN, built and torn down
by the test itself.

A "switch" namespace holds a bridge; every host is a namespace with one veth into it and
an address in a private /24 that exists only inside these namespaces (nothing is added to
the machine's own network). Needs root and ``ip``; :func:`unavailable` says why not.
Processes run in a host through ``ip netns exec`` with their own hostname (``unshare
--uts``), so worker names in the database say which host drove what.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.helpers import ROOT

#: The LAN's /24; private, and routed nowhere: it lives inside the test's namespaces only.
SUBNET = "10.213.7"


def unavailable() -> str | None:
    """Why namespaces cannot be built here (``None`` when they can)."""
    if sys.platform != "linux":
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs as root)"
    for tool in ("ip", "unshare"):
        if shutil.which(tool) is None:
            return f"the {tool!r} command is missing (iproute2 / util-linux)"
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


@dataclass
class Host:
    name: str  # its hostname too
    netns: str
    address: str
    switch_port: str  # the veth end in the switch namespace: down = the host vanished
    home: Path
    procs: list[HostProcess] = field(default_factory=list)

    def command(self, *args: str) -> list[str]:
        """``args`` run in this host, with its hostname."""
        return [
            "ip",
            "netns",
            "exec",
            self.netns,
            "unshare",
            "--uts",
            "sh",
            "-c",
            f'hostname {self.name} && exec "$@"',
            "sh",
            *args,
        ]

    def golem_tasks(self, *args: str) -> list[str]:
        return self.command(sys.executable, "-m", "golem_tasks", *args)

    async def start(self, *args: str, env: dict[str, str], log: str) -> HostProcess:
        """``golem-tasks ARGS`` in this host, output to ``home/LOG``."""
        path = self.home / log
        with path.open("wb") as handle:
            proc = await asyncio.create_subprocess_exec(
                *self.golem_tasks(*args),
                stdout=handle,
                stderr=asyncio.subprocess.STDOUT,
                env={**env, "GOLEM_TASKS_HOME": str(self.home), "PYTHONUNBUFFERED": "1"},
                cwd=ROOT,
            )
        started = HostProcess(self, proc, path, args)
        self.procs.append(started)
        return started

    def run(self, *args: str, env: dict[str, str], timeout: float = 120) -> str:
        """``golem-tasks ARGS`` in this host, to its end; its stdout."""
        result = subprocess.run(
            self.golem_tasks(*args),
            capture_output=True,
            text=True,
            env={**env, "GOLEM_TASKS_HOME": str(self.home)},
            cwd=ROOT,
            timeout=timeout,
            check=False,
        )
        assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
        return result.stdout


@dataclass
class HostProcess:
    host: Host
    proc: asyncio.subprocess.Process
    log: Path
    args: tuple[str, ...]

    def output(self, lines: int = 60) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(sig)

    async def wait(self, timeout: float) -> int:
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(
                f"{self.host.name}: {self.args} did not end in {timeout}s:\n{self.output()}"
            ) from None

    async def wait_for_line(self, text: str, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while text not in self.output(10_000):
            if self.proc.returncode is not None or loop.time() > deadline:
                raise AssertionError(
                    f"{self.host.name}: {self.args} never said {text!r}:\n{self.output()}"
                )
            await asyncio.sleep(0.2)

    async def stop(self, timeout: float = 30) -> None:
        """SIGINT, then SIGKILL when it does not end in time."""
        if self.proc.returncode is not None:
            return
        self.signal(2)
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except asyncio.TimeoutError:
            self.signal(9)
            await self.proc.wait()


class Lan:
    """Hosts on one switch. Always use as a context manager: namespaces (and with them
    their veths and every process's network) are deleted on the way out, even on failure."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        # Names unique per test process: tests of several checkouts may run at once.
        self.tag = f"gt{os.getpid() % 100000}"
        self.switch = f"{self.tag}sw"
        self.hosts: dict[str, Host] = {}
        self._namespaces: list[str] = []

    def __enter__(self) -> Lan:
        self._netns("add", self.switch)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")
        return self

    def __exit__(self, *exc: object) -> None:
        for host in self.hosts.values():
            for proc in host.procs:
                if proc.proc.returncode is None:
                    proc.signal(9)
        for name in reversed(self._namespaces):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)

    def _netns(self, *args: str) -> None:
        _ip("netns", *args)
        if args[0] == "add":
            self._namespaces.append(args[1])

    def add(self, name: str) -> Host:
        """A new host with the next address on the LAN."""
        number = len(self.hosts) + 1
        netns = f"{self.tag}{name}"
        port = f"{self.tag}p{number}"[:15]
        self._netns("add", netns)
        _ip("-n", netns, "link", "set", "lo", "up")
        _ip(
            "-n",
            self.switch,
            "link",
            "add",
            port,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            netns,
        )
        _ip("-n", self.switch, "link", "set", port, "master", "br0")
        _ip("-n", self.switch, "link", "set", port, "up")
        address = f"{SUBNET}.{number}"
        _ip("-n", netns, "addr", "add", f"{address}/24", "dev", "eth0")
        _ip("-n", netns, "link", "set", "eth0", "up")
        home = self.workdir / name
        home.mkdir(parents=True, exist_ok=True)
        host = Host(name, netns, address, port, home)
        self.hosts[name] = host
        return host

    def link(self, host: Host, up: bool) -> None:
        """Cut (or restore) a host's cable at the switch: it vanishes from the LAN without
        knowing it, as when a machine loses power or network."""
        _ip("-n", self.switch, "link", "set", host.switch_port, "up" if up else "down")

    @contextlib.contextmanager
    def cut(self, host: Host) -> Iterator[None]:
        self.link(host, False)
        try:
            yield
        finally:
            self.link(host, True)


def network_facts(host: Host, api_url: str, app_key: str) -> dict[str, Any]:
    """The REST half of the audit (``tests.support.audit.network_facts``), asked from
    ``host``: the devnet is reachable on the LAN only."""
    script = (
        "import asyncio, json, os\n"
        "from tests.support.audit import network_facts\n"
        "facts = network_facts(os.environ['API'], os.environ['KEY'])\n"
        "print(json.dumps(asyncio.run(facts), default=str))\n"
    )
    result = subprocess.run(
        host.command(sys.executable, "-c", script),
        capture_output=True,
        text=True,
        env={**os.environ, "API": api_url, "KEY": app_key},
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    return dict(json.loads(result.stdout))
