"""Throughput benchmarks (``make bench``, issue 9): golem-tasks against a bare golem-core
loop, worker processes, the database path against pgbench, a million tasks from an endless
``get_tasks``, and the README's hello world to its first result.

Every figure goes into BENCHMARKS.md with its target. Assertions only check that the work
was done right; the targets are reported, not asserted (the machine is shared and noisy).
``test_bench_smoke`` runs a small version of the benchmark code in ``make test``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import time
from pathlib import Path

import pytest

from tests.bench import dbpath, harness
from tests.bench.report import Report
from tests.helpers import cli_env

#: Tasks per comparison: about 5-8 s of work for each number of activities.
COMPARE_TASKS = {
    (1, 0.0): 150,
    (10, 0.0): 600,
    (50, 0.0): 1500,
    (1, 0.5): 12,
    (10, 0.5): 120,
    (50, 0.5): 600,
}
TARGETS = {0.0: 0.9, 0.5: 0.97}
#: ``make bench BENCH_MILLION_TASKS=N`` for a shorter run (the report says how many).
MILLION = int(os.environ.get("BENCH_MILLION_TASKS", "1000000"))


def _say(capsys: pytest.CaptureFixture[str], text: str) -> None:
    with capsys.disabled():
        print(f"\n[throughput bench] {text}", flush=True)


# -- golem-tasks against the bare golem-core loop -----------------------------------------


@pytest.mark.bench
@pytest.mark.timeout(900)
@pytest.mark.parametrize(("workers", "sleep"), list(COMPARE_TASKS))
async def test_against_bare_golem_core(
    installed_dsn: str,
    tmp_path: Path,
    workers: int,
    sleep: float,
    bench_report: Report,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tasks = COMPARE_TASKS[(workers, sleep)]
    result = await harness.compare(
        installed_dsn, tmp_path, tasks=tasks, workers=workers, sleep=sleep, repeats=3
    )
    section = f"golem-tasks run against a bare golem-core loop (S = {sleep:g} s)"
    target = TARGETS[sleep] if workers > 1 else None
    what = f"W = {workers}, {tasks} tasks: launch to last result, median of 3"
    bench_report.add(
        section,
        what,
        f"bare {result.bare.last_s:.2f} s, golem-tasks {result.golem_tasks.last_s:.2f} s: "
        f"ratio **{result.ratio:.2f}**",
        f"≥ {target}" if target else "",
        result.ratio >= target if target else None,
    )
    bench_report.add(
        section,
        f"W = {workers}: launch to first result",
        f"bare {result.bare.first_s:.2f} s, golem-tasks {result.golem_tasks.first_s:.2f} s",
    )
    bench_report.add(
        section,
        f"W = {workers}: tasks/s between first and last result",
        f"bare {result.bare.per_second:.0f}, golem-tasks {result.golem_tasks.per_second:.0f}",
        "grows with W until the devnet saturates",
    )
    _say(capsys, f"{what}: {result}")


# -- worker processes -----------------------------------------------------------------


async def _supervised_run(
    net: harness.DevnetProcess,
    dsn: str,
    log: Path,
    *,
    run_id: str,
    workers: int,
    processes: int,
    concurrency: int,
    **bench: str,
) -> tuple[harness.Timing, dict[str, float], asyncio.subprocess.Process]:
    """``supervise`` plus ``worker --processes P``, until the run ends or ``stop_at`` done."""
    env = harness.app_env(net, dsn, **bench)
    worker, _ = await harness.spawn_cli(
        "worker",
        f"--processes={processes}",
        f"--concurrency={concurrency}",
        env=env,
        log=log,
    )
    supervisor, launched = await harness.spawn_cli(
        "supervise",
        harness.BENCH_APP,
        f"--workers={workers}",
        f"--run-id={run_id}",
        "--feed-window=1000",
        f"--budget={harness.BUDGET}",
        env=env,
        log=log,
    )
    with harness.RssWatch(supervisor=supervisor.pid, worker=worker.pid) as rss:
        try:
            await asyncio.wait_for(supervisor.wait(), 1200)
        finally:
            rss.sample()
            worker.send_signal(signal.SIGINT)
            await asyncio.wait_for(worker.wait(), 60)
    first, last, done = await harness.result_times(dsn, run_id)
    return harness.Timing(first - launched, last - launched, done), rss.peaks, supervisor


@pytest.mark.bench
@pytest.mark.timeout(900)
async def test_worker_processes(
    installed_dsn: str, tmp_path: Path, bench_report: Report, capsys: pytest.CaptureFixture[str]
) -> None:
    activities, tasks = 40, 3000
    rates: dict[int, float] = {}
    async with harness.bench_devnet(tmp_path, providers=activities + 5) as net:
        for processes in (1, 2, 4):
            timing, _, supervisor = await _supervised_run(
                net,
                installed_dsn,
                tmp_path / "processes.log",
                run_id=f"processes-{processes}",
                workers=activities,
                processes=processes,
                concurrency=activities,
                tasks=str(tasks),
            )
            assert supervisor.returncode == 0
            assert timing.results == tasks
            rates[processes] = timing.per_second
            _say(capsys, f"worker --processes {processes}: {timing}")
    section = "Worker processes (supervise + worker --processes P, 40 activities, S = 0)"
    for processes, rate in rates.items():
        bench_report.add(
            section,
            f"P = {processes}: tasks/s ({tasks} tasks)",
            f"{rate:.0f} ({rate / rates[1]:.2f}× one process)",
        )


# -- the database path ----------------------------------------------------------------


@pytest.mark.bench
@pytest.mark.timeout(600)
async def test_database_path(
    installed_dsn: str, tmp_path: Path, bench_report: Report, capsys: pytest.CaptureFixture[str]
) -> None:
    tasks = 30000
    ours = await dbpath.claim_and_complete(installed_dsn, tasks=tasks, claimers=8)
    single = await dbpath.claim_and_complete(installed_dsn, tasks=tasks, claimers=8, batched=False)
    theirs = await dbpath.pgbench(installed_dsn, tmp_path, tasks=tasks, clients=8)
    _say(capsys, f"ours {ours} {ours.per_second:.0f}/s; pgbench {theirs.per_second:.0f} tx/s")
    section = "The database path alone (8 concurrent claimers, no Golem calls)"
    bench_report.add(
        section,
        f"claim + complete, {tasks} tasks, drivers of one worker (batched): tasks/s",
        f"{ours.per_second:.0f}",
        "≥ 2000",
        ours.per_second >= 2000,
    )
    bench_report.add(
        section,
        "claim latency p50 / p99",
        f"{ours.claim_p50_ms:.1f} ms / {ours.claim_p99_ms:.1f} ms",
        "p99 < 10 ms",
        ours.claim_p99_ms < 10,
    )
    bench_report.add(
        section,
        "the same, each claimer its own statement per task: tasks/s, claim p99",
        f"{single.per_second:.0f}, {single.claim_p99_ms:.1f} ms",
    )
    bench_report.add(
        section,
        "pgbench, the same statement (8 clients, prepared): tx/s",
        f"{theirs.per_second:.0f} (latency average {theirs.claim_p50_ms:.1f} ms); "
        f"golem-tasks at {ours.per_second / theirs.per_second:.2f}× of it",
    )


# -- a million tasks ------------------------------------------------------------------


@pytest.mark.bench
@pytest.mark.timeout(1800)
async def test_a_million_tasks(
    installed_dsn: str, tmp_path: Path, bench_report: Report, capsys: pytest.CaptureFixture[str]
) -> None:
    """An endless get_tasks, tasks computed without Golem calls (BENCH_LOCAL): what the
    supervisor and a worker hold in memory after MILLION tasks, and how fast the monitoring
    commands answer on such a run."""
    activities = 20
    log = tmp_path / "million.log"
    async with harness.bench_devnet(tmp_path, providers=activities + 5) as net:
        env = harness.app_env(net, installed_dsn, endless="1", local="1")
        worker, _ = await harness.spawn_cli(
            "worker", f"--concurrency={activities}", env=env, log=log
        )
        supervisor, launched = await harness.spawn_cli(
            "supervise",
            harness.BENCH_APP,
            f"--workers={activities}",
            "--run-id=million",
            "--feed-window=2000",
            f"--budget={harness.BUDGET}",
            env=env,
            log=log,
        )
        with harness.RssWatch(supervisor=supervisor.pid, worker=worker.pid) as rss:
            done = 0
            while done < MILLION:
                await asyncio.sleep(2)
                assert supervisor.returncode is None, f"supervisor ended early; see {log}"
                done = await harness.done_count(installed_dsn, "million")
            elapsed = time.time() - launched
            rss.sample()
            supervisor.send_signal(signal.SIGINT)
            await asyncio.wait_for(supervisor.wait(), 120)
            worker.send_signal(signal.SIGINT)
            await asyncio.wait_for(worker.wait(), 60)
    env = cli_env(GOLEM_TASKS_DSN=installed_dsn)
    summary = statistics.median(
        [await harness.timed_cli("summary", "--run-id=million", env=env) for _ in range(3)]
    )
    show = statistics.median(
        [await harness.timed_cli("show", "--run-id=million", env=env) for _ in range(3)]
    )
    interpreter = statistics.median([await harness.timed_cli("--help", env=env) for _ in range(3)])
    _say(capsys, f"{done} tasks in {elapsed:.0f}s, rss {rss.peaks}, summary {summary:.2f}s")
    section = f"{done:,} tasks from an endless get_tasks (supervise + worker, 20 activities)"
    bench_report.add(section, "tasks/s over the run", f"{done / elapsed:.0f}")
    for name, peak in rss.peaks.items():
        bench_report.add(section, f"{name} peak RSS", f"{peak:.0f} MB", "< 200 MB", peak < 200)
    for name, seconds in (("summary", summary), ("show", show)):
        bench_report.add(
            section,
            f"`golem-tasks {name}` on that run (whole command, median of 3)",
            f"{seconds:.2f} s ({seconds - interpreter:.2f} s beyond `golem-tasks --help`)",
            "< 0.5 s",
            seconds < 0.5,
        )


# -- the README's hello world ---------------------------------------------------------


@pytest.mark.bench
@pytest.mark.timeout(600)
async def test_hello_world_first_result(
    installed_dsn: str, tmp_path: Path, bench_report: Report, capsys: pytest.CaptureFixture[str]
) -> None:
    firsts = []
    for n in range(3):
        run_id = f"hello-{n}"
        env = cli_env(GOLEM_TASKS_DSN=installed_dsn, HELLO_WORLD_TASKS="3")
        proc, launched = await harness.spawn_cli(
            "run",
            "examples/hello_world.py",
            "--workers=3",
            "--devnet=5",
            f"--run-id={run_id}",
            env=env,
            log=tmp_path / "hello.log",
        )
        assert await asyncio.wait_for(proc.wait(), 300) == 0
        first, _, done = await harness.result_times(installed_dsn, run_id)
        assert done == 3
        firsts.append(first - launched)
    first = statistics.median(firsts)
    _say(capsys, f"hello world first results: {firsts}")
    bench_report.add(
        "README hello world (`golem-tasks run examples/hello_world.py --workers 3 --devnet 5`)",
        "command start to first result (tasks sleep 1 s), median of 3",
        f"{first:.2f} s",
        "< 3 s",
        first < 3,
    )


# -- smoke in make test ---------------------------------------------------------------


@pytest.mark.timeout(300)
async def test_bench_smoke(installed_dsn: str, tmp_path: Path) -> None:
    """The benchmark code, small: a comparison, the database path and pgbench, a report."""
    report = Report()
    result = await harness.compare(
        installed_dsn, tmp_path, tasks=20, workers=2, sleep=0.0, repeats=1, label="smoke"
    )
    assert result.bare.results == result.golem_tasks.results == 20
    assert 0 < result.bare.first_s <= result.bare.last_s
    assert 0 < result.golem_tasks.first_s <= result.golem_tasks.last_s
    ours = await dbpath.claim_and_complete(installed_dsn, tasks=400, claimers=8)
    theirs = await dbpath.pgbench(installed_dsn, tmp_path, tasks=400, clients=8)
    assert ours.tasks == 400 and theirs.tasks == 400
    assert ours.claim_p50_ms <= ours.claim_p99_ms
    report.add("smoke", "ratio", f"{result.ratio:.2f}", "≥ 0.9", result.ratio >= 0.9)
    report.write(tmp_path / "BENCHMARKS.md")
    text = (tmp_path / "BENCHMARKS.md").read_text()
    assert "| ratio |" in text and "cores" in text and "make bench" in text
