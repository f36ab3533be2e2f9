"""Throughput of one run with its workers on one host, then the same activities spread
over two hosts (network namespaces on one LAN, see ``tests/support/netns.py``); and the
standby supervisor's takeover time.

Prints tasks per second from the database (first task started to last task finished) and
takeover seconds, for the notes (docs/multi-host.md); asserts only what the scenarios
check (every task done once, the audit).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.pipeline_support import APP, rows
from tests.support.cluster import assert_done_once, cluster
from tests.support.multihost import Size, standby_takes_over
from tests.support.netns import unavailable

pytestmark = [
    pytest.mark.bench,
    pytest.mark.timeout(1200),
    pytest.mark.skipif(unavailable() is not None, reason=str(unavailable())),
]

TASKS = 200


@pytest.mark.parametrize(("hosts", "per_host"), [(1, 6), (2, 3), (2, 6)])
async def test_throughput_one_vs_two_worker_hosts(
    tmp_path: Path, hosts: int, per_host: int
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


@pytest.mark.parametrize("cut_link", [False, True], ids=["sigkill", "link-down"])
async def test_standby_takeover_time(tmp_path: Path, cut_link: bool) -> None:
    """How long a run goes without a supervisor when its supervisor is killed, or its host
    vanishes, before the standby has taken it (three runs each)."""
    size = Size(tasks=60, sleep=1.0, providers=5, concurrency={"B": 2, "C": 2})
    times = [
        (await standby_takes_over(tmp_path / str(n), size, cut_link=cut_link))[0] for n in range(3)
    ]
    what = "link down" if cut_link else "SIGKILL"
    print(f"\nstandby takeover after {what}: " + ", ".join(f"{t:.1f}s" for t in times))
