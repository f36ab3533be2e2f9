"""`run`, `supervise` and `worker` on a real terminal (a pseudo-terminal): concise events
above a live panel, full logs in a file under $GOLEM_TASKS_HOME/logs."""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from tests.helpers import ROOT, cli_env
from tests.integration.pipeline_support import APP, devnet, env_for, wait_for

pytestmark = pytest.mark.timeout(240)

STYLE = re.compile(r"\x1b\[[0-9;]*m|\x1b\][^\x07]*\x07|\r")
# The panel's redraws move the cursor up and erase lines: each starts a new line here.
MOVES = re.compile(r"(\x1b\[[0-9;?]*[A-Za-z])+")
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}")
LONG_ID = re.compile(r"\b[0-9a-f]{32,}\b")


class Terminal:
    """A golem-tasks process whose stdin, stdout and stderr are a 120x30 terminal."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "golem_tasks", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**env, "TERM": "xterm-256color"},
            cwd=ROOT,
            start_new_session=True,
        )
        os.close(slave)
        self.master = master
        self.raw = b""

    def read_some(self, wait: float = 0.5) -> bool:
        """Read what comes within ``wait`` s; ``False`` once no process has the terminal."""
        ready, _, _ = select.select([self.master], [], [], wait)
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: no process has the terminal open any more
            return False
        self.raw += chunk
        return bool(chunk)

    async def read_until(self, pattern: str, timeout: float = 60) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not re.search(pattern, self.text()):
            if loop.time() > deadline or not await asyncio.to_thread(self.read_some):
                raise AssertionError(f"no {pattern!r} on the terminal:\n{self.text()[-3000:]}")
        return self.text()

    async def finish(self, timeout: float = 120) -> int:
        """Read until the process ends; its exit status."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while await asyncio.to_thread(self.read_some):
            if self.proc.poll() is not None:
                while self.read_some(0.2) and self.proc.poll() is None:
                    pass
                break
            if loop.time() > deadline:
                raise AssertionError(f"still running after {timeout}s:\n{self.text()[-3000:]}")
        code = await asyncio.to_thread(self.proc.wait, 10)
        os.close(self.master)
        return code

    def text(self) -> str:
        return MOVES.sub("\n", STYLE.sub("", self.raw.decode(errors="replace")))


def check_concise(text: str) -> None:
    """Short ids and no timestamps on the terminal."""
    assert not LONG_ID.search(text), LONG_ID.search(text)
    assert not TIMESTAMP.search(text), TIMESTAMP.search(text)


def log_file(text: str, home: Path, command: str) -> Path:
    match = re.search(rf"full log: ({re.escape(str(home))}/logs/{command}-[0-9-]+\.log)", text)
    assert match, text[-2000:]
    return Path(match.group(1))


async def test_run_on_a_terminal_shows_a_live_panel(installed_dsn: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = cli_env(
        GOLEM_TASKS_DSN=installed_dsn,
        GOLEM_TASKS_HOME=str(home),
        MULTIPLY_TASKS="24",
        MULTIPLY_SLEEP="0.4",
    )
    term = Terminal("run", APP, "--workers", "2", "--devnet", "3", "--run-id", "tty", env=env)
    try:
        # While the run works: the panel, with its bar, counts, rate and money.
        await term.read_until(r"[1-9]\d* done, 0 failed")
        await term.read_until(r"tasks/min.*activities working.*GLM spent")
        assert "━" in term.text()
        assert await term.finish() == 0, term.text()[-3000:]
    finally:
        if term.proc.poll() is None:
            term.proc.kill()
    text = term.text()
    # Concise events above it, the summary at the end.
    assert re.search(r"^activity [0-9a-f]{8} ready$", text, re.M), text[-3000:]
    assert re.search(r"^agreement [0-9a-f]{8} with devnet-\d", text, re.M)
    assert re.search(r"^task \d+: \d+$", text, re.M)
    assert "run tty  finished" in text and "24 done, 0 failed" in text
    check_concise(text)
    # Every detail in the log file: timestamps, logger names, whole ids.
    logged = log_file(text, home, "run").read_text()
    assert TIMESTAMP.search(logged) and "golem_tasks.supervisor" in logged
    assert re.search(r"agreement [0-9a-f]{64} with devnet-", logged)
    assert len(re.findall(r"golem_tasks.results: task \d+: ", logged)) == 24


async def test_supervise_and_workers_on_terminals(installed_dsn: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    async with devnet(providers=4, seed=41) as net:
        env = env_for(
            net,
            installed_dsn,
            GOLEM_TASKS_HOME=str(home),
            MULTIPLY_TASKS="30",
            MULTIPLY_SLEEP="0.4",
        )
        workers = Terminal("worker", "--processes", "2", "--concurrency", "2", env=env)
        sup = Terminal("supervise", APP, "--workers", "3", "--run-id", "ttys", env=env)
        try:
            # The workers' panel: both processes, the live run, the activities they drive.
            await workers.read_until(r"workers \S+:\d+, \S+:\d+ · driving [1-9]\d* activities", 90)
            await workers.read_until(r"run ttys running · \d+/30 done")
            await sup.read_until(r"tasks/min.*activities working")
            assert await sup.finish() == 0, sup.text()[-3000:]
            await wait_for(
                installed_dsn,
                "SELECT count(*) FROM tasks.run WHERE status = 'running'",
                lambda n: n == 0,
            )
            await workers.read_until(r"no run is running")
            workers.proc.send_signal(signal.SIGINT)
            assert await workers.finish() == 0, workers.text()[-3000:]
        finally:
            for term in (workers, sup):
                if term.proc.poll() is None:
                    term.proc.kill()
    text = sup.text()
    assert "run ttys  finished" in text and "30 done, 0 failed" in text
    assert re.search(r"^agreement [0-9a-f]{8} terminated", text, re.M), text[-3000:]
    check_concise(text)
    check_concise(workers.text())
    # The worker processes' own lines went to the log file, not onto the panel.
    logged = log_file(workers.text(), home, "worker").read_text()
    assert len(re.findall(r"workers\.app: worker \S+ of requestor \S+ listening", logged)) == 2, (
        logged[-2000:]
    )
    assert re.search(r"activity [0-9a-f]{32} ready", logged)
    assert "listening on" not in workers.text()
