"""Timing golem-tasks against the bare golem-core loop on one devnet, as real processes.

Both sides are launched as their own process (as a user launches them) against a devnet
in its own process (:class:`DevnetProcess`); "launch to last result" runs from just before
the process is spawned to the wall-clock time of its last result (the bare loop reports it,
golem-tasks stores it in ``tasks.task.finished_at``).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from golem_tasks.devnet.detached import DevnetProcess
from tests.helpers import ROOT, cli_env

BENCH_APP = "tests/bench/bench_app.py"


@dataclass(frozen=True)
class Timing:
    first_s: float  # launch to first result
    last_s: float  # launch to last result
    results: int

    @property
    def per_second(self) -> float:
        """Results per second between the first and the last (start-up excluded)."""
        span = self.last_s - self.first_s
        return (self.results - 1) / span if span > 0 and self.results > 1 else float("nan")


#: Enough for every benchmark's activities under the prospective budget (the devnet's
#: account holds 1,000).
BUDGET = "100/h"


def median_timing(timings: list[Timing]) -> Timing:
    """The run whose launch-to-last-result time is the median."""
    ordered = sorted(timings, key=lambda t: t.last_s)
    return ordered[len(ordered) // 2]


def profile_text(providers: int) -> str:
    """Identical, fault-free providers that deploy at once: only the pipeline is measured."""
    return f'[[group]]\nname = "bench"\ncount = {providers}\ndeploy_sec = 0.0\n'


@asynccontextmanager
async def bench_devnet(directory: Path, providers: int) -> AsyncIterator[DevnetProcess]:
    profile = directory / f"bench-{providers}.toml"
    profile.write_text(profile_text(providers))
    async with DevnetProcess(profile=profile, seed=7) as net:
        yield net


async def _spawn(
    args: list[str], env: dict[str, str], log: Path
) -> tuple[asyncio.subprocess.Process, float]:
    handle = log.open("ab")
    launched = time.time()
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=handle, env=env, cwd=ROOT
    )
    handle.close()
    return proc, launched


async def time_bare_loop(
    net: DevnetProcess, log: Path, *, tasks: int, workers: int, sleep: float
) -> Timing:
    args = [sys.executable, "-m", "tests.bench.bare_loop", f"--tasks={tasks}"]
    args += [f"--workers={workers}", f"--sleep={sleep}"]
    proc, launched = await _spawn(args, cli_env(**net.env()), log)
    out, _ = await asyncio.wait_for(proc.communicate(), 600)
    if proc.returncode != 0:
        raise AssertionError(f"bare loop failed ({proc.returncode}); see {log}")
    report = json.loads(out.decode().strip().splitlines()[-1])
    return Timing(
        report["first_result"] - launched, report["last_result"] - launched, report["results"]
    )


def app_env(net: DevnetProcess | None, dsn: str, **bench: str) -> dict[str, str]:
    env = cli_env(**(net.env() if net else {}), GOLEM_TASKS_DSN=dsn, PYTHONUNBUFFERED="1")
    env.update({f"BENCH_{key.upper()}": value for key, value in bench.items()})
    return env


async def result_times(dsn: str, run_id: str) -> tuple[float, float, int]:
    """(first, last) wall-clock result times of a run, and how many tasks are done."""
    async with await psycopg.AsyncConnection.connect(dsn, row_factory=dict_row) as conn:
        cur = await conn.execute(  # benchmark-only inline SQL
            "SELECT extract(epoch FROM min(finished_at))::float8 AS first,"
            " extract(epoch FROM max(finished_at))::float8 AS last, count(*) AS done"
            " FROM tasks.task WHERE run_id = %s AND status = 'done'",
            (run_id,),
        )
        row = await cur.fetchone()
    assert row is not None
    return row["first"], row["last"], row["done"]


async def time_golem_tasks(
    net: DevnetProcess,
    dsn: str,
    log: Path,
    *,
    run_id: str,
    tasks: int,
    workers: int,
    sleep: float,
) -> Timing:
    args = [sys.executable, "-m", "golem_tasks", "run", BENCH_APP, f"--workers={workers}"]
    # The prospective budget holds back what each activity may charge before its first
    # debit note: W = 50 needs more than the default 1/h.
    args += [f"--run-id={run_id}", f"--budget={BUDGET}"]
    env = app_env(net, dsn, tasks=str(tasks), sleep=str(sleep))
    proc, launched = await _spawn(args, env, log)
    await asyncio.wait_for(proc.communicate(), 600)
    if proc.returncode != 0:
        raise AssertionError(f"golem-tasks run failed ({proc.returncode}); see {log}")
    first, last, done = await result_times(dsn, run_id)
    assert done == tasks, f"{done} of {tasks} tasks done; see {log}"
    return Timing(first - launched, last - launched, done)


@dataclass(frozen=True)
class Comparison:
    tasks: int
    workers: int
    sleep: float
    bare: Timing
    golem_tasks: Timing

    @property
    def ratio(self) -> float:
        """Speed of golem-tasks relative to the bare loop (1.0: as fast)."""
        return self.bare.last_s / self.golem_tasks.last_s


async def compare(
    dsn: str,
    directory: Path,
    *,
    tasks: int,
    workers: int,
    sleep: float,
    repeats: int = 3,
    label: str = "cmp",
) -> Comparison:
    """Median of ``repeats`` runs of each, alternating, on one devnet."""
    log = directory / f"{label}-w{workers}-s{sleep:g}.log"
    bare: list[Timing] = []
    ours: list[Timing] = []
    async with bench_devnet(directory, providers=workers + 10) as net:
        for n in range(repeats):
            bare.append(await time_bare_loop(net, log, tasks=tasks, workers=workers, sleep=sleep))
            ours.append(
                await time_golem_tasks(
                    net,
                    dsn,
                    log,
                    run_id=f"{label}-w{workers}-s{sleep:g}-{n}".replace(".", "_"),
                    tasks=tasks,
                    workers=workers,
                    sleep=sleep,
                )
            )
    return Comparison(tasks, workers, sleep, median_timing(bare), median_timing(ours))


def cpu_count() -> int:
    return os.cpu_count() or 1


def peak_rss_mib(pid: int) -> float | None:
    """The process's peak resident memory (VmHWM), None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def children_of(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return []
    return [int(p) for p in text.split()]


class RssWatch:
    """Samples the peak RSS of processes (and their children) until stopped."""

    def __init__(self, **pids: int) -> None:
        self.pids = pids
        self.peaks: dict[str, float] = dict.fromkeys(pids, 0.0)
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> None:
        for name, pid in self.pids.items():
            for one in [pid, *children_of(pid)]:
                peak = peak_rss_mib(one)
                if peak is not None:
                    self.peaks[name] = max(self.peaks[name], peak)

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(0.5)

    def __enter__(self) -> RssWatch:
        self._task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()


async def spawn_cli(
    *args: str, env: dict[str, str], log: Path
) -> tuple[asyncio.subprocess.Process, float]:
    """``golem-tasks ARGS`` with its output in ``log``; (process, wall-clock launch time)."""
    handle = log.open("ab")
    launched = time.time()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "golem_tasks",
        *args,
        stdout=handle,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
        cwd=ROOT,
    )
    handle.close()
    return proc, launched


async def done_count(dsn: str, run_id: str) -> int:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute(  # benchmark-only inline SQL
            "SELECT count(*) FROM tasks.task WHERE run_id = %s AND status = 'done'", (run_id,)
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def timed_cli(*args: str, env: dict[str, str]) -> float:
    """Wall time of one ``golem-tasks ARGS`` from launch to exit (output discarded)."""
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "golem_tasks",
        *args,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return time.perf_counter() - started
