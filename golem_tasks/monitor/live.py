"""The run in a terminal: concise events scrolling above a panel pinned at the bottom.

Long runs print thousands of events; on a terminal a user wants to see where the run
stands, not timestamps and 64-character ids. So there the full log lines go to a file
under ``$GOLEM_TASKS_HOME/logs`` and the terminal gets short lines above a live panel
read from the database once a second (the same facts as ``summary``). Output that is not
a terminal keeps the plain log lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from golem_tasks.config import home_dir
from golem_tasks.db import access
from golem_tasks.db.connect import connection
from golem_tasks.monitor import render
from golem_tasks.monitor.snapshot import RunSnapshot, snapshot

logger = logging.getLogger(__name__)

PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: The results logger's lines shown per second at most; the rest are counted.
RESULTS_PER_S = 5
REFRESH_S = 1.0
#: Whose "progress: ..." lines the panel replaces.
PROGRESS_LOGGER = "golem_tasks.supervisor.supervisor"

# Hex ids (activities, agreements, demands, addresses) of 16 characters or more: at least
# one letter, so that long decimal numbers are left alone.
_LONG_ID = re.compile(r"\b(0x)?(?=[0-9a-f]*[a-f])([0-9a-f]{16,})\b")
_UUID = re.compile(r"\b([0-9a-f]{8})-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
# Amounts printed with every one of their 18 decimals.
_LONG_DECIMAL = re.compile(r"\b\d+\.\d{7,}\b")


def shorten(message: str) -> str:
    """Ids cut to 8 characters, long decimals to 6 places."""
    message = _UUID.sub(lambda m: m.group(1), message)
    message = _LONG_ID.sub(lambda m: (m.group(1) or "") + m.group(2)[:8], message)
    return _LONG_DECIMAL.sub(lambda m: render.money(m.group(0)), message)


def is_terminal(stream: Any = None) -> bool:
    stream = stream or sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)()) and os.environ.get("TERM") != "dumb"


def log_path(command: str, now: datetime | None = None) -> Path:
    """A new log file for one command: ``$GOLEM_TASKS_HOME/logs/run-20250101-120000-42.log``."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    return home_dir() / "logs" / f"{command}-{stamp}-{os.getpid()}.log"


class ConciseHandler(logging.Handler):
    """Log records as short lines on the panel's console (full ones with ``verbose``)."""

    def __init__(self, console: Console, *, verbose: bool) -> None:
        super().__init__(logging.DEBUG if verbose else logging.INFO)
        self.console = console
        self.verbose = verbose
        self._window = (0.0, 0)  # start of this second, results shown in it
        self.hidden_results = 0
        if verbose:
            self.setFormatter(logging.Formatter(PLAIN_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if self.verbose:
                self.console.print(Text(self.format(record)), soft_wrap=True)
                return
            if record.name == "golem_tasks.results" and not self._result_shown():
                return
            if record.name == PROGRESS_LOGGER and record.getMessage().startswith("progress:"):
                return  # the panel shows it
            text = Text(shorten(record.getMessage()))
            if record.levelno >= logging.ERROR:
                text = Text.assemble(("error: ", "bold red"), text)
            elif record.levelno >= logging.WARNING:
                text = Text.assemble(("warning: ", "yellow"), text)
            if record.exc_info and record.exc_info[1] is not None:
                exc = record.exc_info[1]
                text.append(f" ({type(exc).__name__}: {exc})", style="dim")
            self.console.print(text, soft_wrap=True)
        except Exception:
            self.handleError(record)

    def _result_shown(self) -> bool:
        now = time.monotonic()
        start, shown = self._window
        if now - start >= 1.0:
            self._window = (now, 1)
            return True
        if shown < RESULTS_PER_S:
            self._window = (start, shown + 1)
            return True
        self.hidden_results += 1
        return False


@dataclass
class WorkerRow:
    run_id: str
    status: str
    mine: int
    working: int
    done: int
    total: int


def run_panel(snap: RunSnapshot, log_file: Path | None) -> RenderableType:
    """Progress bar, counts, rate, ETA, activities working and money of one run."""
    run, counts = snap.run, snap.counts
    finished = counts.done + counts.failed
    total = counts.total if run["feed_done"] else max(counts.total, finished + 1)
    head = Table.grid(padding=(0, 1))
    head.add_column()
    head.add_column()
    share = f"{100 * finished / counts.total:.0f}%" if run["feed_done"] and counts.total else ""
    head.add_row(
        ProgressBar(total=max(total, 1), completed=finished, width=30),
        Text.assemble(
            (share + " ", "bold"),
            (f"{counts.done} done", "green"),
            ", ",
            (f"{counts.failed} failed", "red" if counts.failed else ""),
            f", {counts.claimed} running, {counts.pending} pending"
            + ("" if run["feed_done"] else " (more coming)"),
        ),
    )
    eta = snap.eta_s
    market = snap.market
    working = int(market.get("working_activities", 0))
    want = f"/{run['workers']}" if run["status"] == "running" else ""
    line = Text.assemble(
        f"{snap.tasks_per_min:.1f} tasks/min",
        (f", ETA {render.duration(eta)}" if eta is not None else ""),
        f" · {working}{want} activities working · ",
        (f"{render.money(snap.spend.get('accepted'))} GLM spent", "bold"),
        f" ({render.money(snap.spent_last_hour)} of {render.money(run['budget_per_hour'])}"
        " in the last hour)",
    )
    foot = Text.assemble(
        ("run ", "dim"),
        (run["id"], "bold"),
        " ",
        (run["status"], render.STATUS_STYLE.get(run["status"], "")),
        (f" · full log: {log_file}" if log_file else "", "dim"),
    )
    return Group(head, line, foot)


def worker_panel(rows: list[WorkerRow], names: list[str], log_file: Path | None) -> RenderableType:
    """The live runs and how many of their activities these worker processes drive."""
    lines: list[RenderableType] = []
    mine = sum(row.mine for row in rows)
    lines.append(
        Text.assemble(
            ("workers ", "dim"),
            ", ".join(names),
            f" · driving {mine} activities",
        )
    )
    for row in rows:
        lines.append(
            Text.assemble(
                ("run ", "dim"),
                (row.run_id, "bold"),
                " ",
                (row.status, render.STATUS_STYLE.get(row.status, "")),
                f" · {row.done}/{row.total} done · {row.mine} of its "
                f"{row.working} working activities here",
            )
        )
    if not rows:
        lines.append(Text("no run is running: waiting for one", style="dim"))
    if log_file:
        lines.append(Text(f"full log: {log_file}", style="dim"))
    return Group(*lines)


class Panel:
    """Draws the panel from the database once a second, in a thread of its own.

    ``run_id`` gives the run (``None`` until it is known); ``worker_names`` (host:pid)
    makes it a worker's panel instead.
    """

    def __init__(
        self,
        console: Console,
        dsn: str,
        *,
        run_id: Callable[[], str | None] | None = None,
        worker_names: Callable[[], list[str]] | None = None,
        log_file: Path | None = None,
        refresh_s: float = REFRESH_S,
    ) -> None:
        self.dsn = dsn
        self.run_id = run_id
        self.worker_names = worker_names
        self.log_file = log_file
        self.refresh_s = refresh_s
        self.live = Live(
            Text("starting…", style="dim"),
            console=console,
            auto_refresh=False,
            transient=True,
            redirect_stdout=True,
            redirect_stderr=True,
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="panel", daemon=True)

    def __enter__(self) -> Panel:
        self.live.start(refresh=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.live.stop()

    def _main(self) -> None:
        asyncio.run(self._poll())

    async def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                async with connection(self.dsn, autocommit=True) as conn:
                    while not self._stop.is_set():
                        self.live.update(await self._view(conn), refresh=True)
                        await asyncio.to_thread(self._stop.wait, self.refresh_s)
            except Exception as exc:  # the run goes on: the panel says so and tries again
                logger.debug("panel: %s", exc)
                self.live.update(Text(f"panel: database unreachable ({exc})", style="dim"))
                self.live.refresh()
                await asyncio.to_thread(self._stop.wait, self.refresh_s)

    async def _view(self, conn: Any) -> RenderableType:
        if self.worker_names is not None:
            names = self.worker_names()
            rows = await access.all_rows(conn, "worker_panel", workers=names)
            return worker_panel([WorkerRow(**row) for row in rows], names, self.log_file)
        run_id = self.run_id() if self.run_id else None
        if run_id is None or await access.one(conn, "get_run", run_id=run_id) is None:
            return Text("starting the run…", style="dim")
        return run_panel(await snapshot(conn, run_id, activities=0, errors=0), self.log_file)


@contextlib.contextmanager
def terminal_output(
    command: str,
    dsn: str,
    *,
    verbose: bool,
    run_id: Callable[[], str | None] | None = None,
    worker_names: Callable[[], list[str]] | None = None,
) -> Iterator[Path]:
    """Logs to a new file and concise events above the live panel; yields the file."""
    path = log_path(command)
    path.parent.mkdir(parents=True, exist_ok=True)
    console = Console(file=sys.stdout)
    root = logging.getLogger()
    saved = root.handlers[:]
    to_file = logging.FileHandler(path, encoding="utf-8")
    to_file.setFormatter(logging.Formatter(PLAIN_FORMAT))
    concise = ConciseHandler(console, verbose=verbose)
    root.handlers = [to_file, concise]
    panel = Panel(console, dsn, run_id=run_id, worker_names=worker_names, log_file=path)
    try:
        with panel:
            yield path
    finally:
        root.handlers = saved
        to_file.close()
        if concise.hidden_results:
            console.print(
                Text(
                    f"{concise.hidden_results} more result lines are in the log file",
                    style="dim",
                )
            )
        console.print(Text(f"full log: {path}", style="dim"))
