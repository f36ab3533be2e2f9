"""Throughput of one run with its workers on one host, then the same activities spread
over two hosts (network namespaces on one LAN, see ``tests/support/netns.py``).

Prints tasks per second from the database (first task started to last task finished),
for the notes; asserts only that every task was done once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench.report import Report
from tests.integration.pipeline_support import APP, rows
from tests.support.cluster import assert_done_once, cluster
from tests.support.netns import unavailable

pytestmark = [
    pytest.mark.bench,
    pytest.mark.timeout(1200),
    pytest.mark.skipif(unavailable() is not None, reason=str(unavailable())),
]

TASKS = 200


@pytest.mark.parametrize(("hosts", "per_host"), [(1, 6), (2, 3), (2, 6)])
async def test_throughput_one_vs_two_worker_hosts(
    tmp_path: Path, hosts: int, per_host: int, bench_report: Report
) -> None:
    names = ["B", "C"][:hosts]
    activities = hosts * per_host
    async with cluster(tmp_path, names, providers=activities + 2, seed=41) as net:
        env = net.host_env(MULTIPLY_TASKS=str(TASKS), MULTIPLY_SLEEP="0.2")
        for name in names:
            worker = await net.lan.hosts[name].start(
                "worker", "--concurrency", str(per_host), env=env, log="worker.log"
            )
            await worker.wait_for_line("listening on", 60)
        run_id = f"bench{hosts}x{per_host}"
        sup = await net.a.start(
            "supervise",
            APP,
            "--workers",
            str(activities),
            "--run-id",
            run_id,
            env=env,
            log="supervise.log",
        )
        assert await sup.wait(900) == 0, sup.output()
        await assert_done_once(net.local_dsn, run_id, TASKS)
        [row] = await rows(
            net.local_dsn,
            "SELECT extract(epoch FROM max(finished_at) - min(started_at)) AS s "
            "FROM tasks.task WHERE run_id = %s",
            run_id,
        )
        seconds = float(row["s"])
        print(  # the figures for the notes
            f"\n{hosts} worker host(s), {activities} activities: {TASKS} tasks in "
            f"{seconds:.1f}s = {TASKS / seconds:.1f} tasks/s"
        )
        bench_report.add(
            f"Worker hosts (network namespaces, {TASKS} tasks of 0.2 s, first start to last end)",
            f"{hosts} host(s) × {per_host} activities: tasks/s",
            f"{TASKS / seconds:.1f} ({seconds:.1f} s)",
        )
