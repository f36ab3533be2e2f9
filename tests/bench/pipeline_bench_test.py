"""Pipeline benchmarks (``make bench``): wall time of real runs on the devnet.

The hello-world workload: every task sleeps 1 s on its provider, so N tasks on W workers
need at least N / W seconds of work; the rest is the pipeline's overhead (start-up,
negotiation, deploy, claims, payments, the end of the run).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration.pipeline_support import APP, Cli, devnet, env_for, value


async def timed_run(dsn: str, tmp_path: Path, *, tasks: int, workers: int) -> float:
    async with devnet(providers=workers + 5, seed=31) as net:
        env = env_for(net, dsn, MULTIPLY_TASKS=str(tasks), MULTIPLY_SLEEP="1")
        started = time.monotonic()
        cli = await Cli.start(
            "run",
            APP,
            "--workers",
            str(workers),
            "--run-id",
            "bench",
            # The prospective budget holds back what every activity may charge before its
            # first debit note: 40 activities need more than the default 1/h.
            "--budget",
            "100/h",
            env=env,
            log=tmp_path / "run.log",
        )
        assert await cli.wait(600) == 0, cli.output()
        elapsed = time.monotonic() - started
    done = await value(
        dsn, "SELECT count(*) FROM tasks.task WHERE run_id = 'bench' AND status = 'done'"
    )
    assert done == tasks
    return elapsed


@pytest.mark.bench
@pytest.mark.timeout(900)
@pytest.mark.parametrize(("tasks", "workers"), [(20, 3), (200, 10), (400, 40)])
async def test_run_wall_time(
    installed_dsn: str,
    tmp_path: Path,
    tasks: int,
    workers: int,
    capsys,
    record_property,
    bench_report,
) -> None:
    elapsed = await timed_run(installed_dsn, tmp_path, tasks=tasks, workers=workers)
    ideal = tasks / workers
    record_property("wall_s", round(elapsed, 1))
    with capsys.disabled():
        print(
            f"\n[pipeline bench] {tasks} tasks x 1 s on {workers} workers: {elapsed:.1f}s wall "
            f"(ideal {ideal:.0f}s, overhead {elapsed - ideal:.1f}s, "
            f"{tasks / elapsed:.1f} tasks/s)"
        )
    bench_report.add(
        "Hello-world workload (every task sleeps 1 s), launch to exit including shutdown",
        f"{tasks} tasks on {workers} workers: wall time",
        f"{elapsed:.1f} s (ideal {ideal:.0f} s)",
        f"≤ {ideal * 1.25 + 15:.0f} s (ideal × 1.25 + 15 s)",
        elapsed <= ideal * 1.25 + 15,
    )
    # Target: the pipeline adds at most 25% plus a fixed 15 s of start-up and shutdown.
    assert elapsed <= ideal * 1.25 + 15


@pytest.mark.timeout(300)
async def test_run_smoke(installed_dsn: str, tmp_path: Path) -> None:
    """The benchmark's workload, small, in every test run."""
    await timed_run(installed_dsn, tmp_path, tasks=12, workers=4)
