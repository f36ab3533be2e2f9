"""Several hosts, one DSN: real processes in real network namespaces.

Host A serves the embedded PostgreSQL (``db start --listen``) and the devnet on its LAN
address and runs the supervisor; B and C run workers, and B a standby supervisor that
takes over when A's is killed; D is another requestor (its own devnet, so another node id)
whose worker shares the database. Then the failure scenarios of
``tests/support/multihost.py`` as smokes: a worker host's link down for 20 s mid-run, and
a standby taking over when the supervisor's host vanishes (``make chaos`` runs them at full
size, in ``tests/chaos/test_multihost.py``).
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest

from tests.integration.pipeline_support import APP, value, wait_for
from tests.support.cluster import cluster, start_devnet
from tests.support.multihost import (
    Size,
    assert_run_checked,
    standby_takes_over,
    worker_host_link_down,
)
from tests.support.netns import unavailable

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(unavailable() is not None, reason=str(unavailable())),
]


async def test_two_worker_hosts_a_standby_and_a_stranger(
    tmp_path: Path,
) -> None:
    tasks = 32
    async with cluster(tmp_path, ["B", "C", "D"], providers=6, seed=11) as net:
        b, c, d = (net.lan.hosts[name] for name in "BCD")
        app = {"MULTIPLY_TASKS": str(tasks), "MULTIPLY_SLEEP": "1"}
        workers = [
            await host.start(
                "worker", "--concurrency", "2", env=net.host_env(**app), log="worker.log"
            )
            for host in (b, c)
        ]
        # D: a worker on the same database whose yagna is another requestor.
        _, other_yagna = await start_devnet(d, "127.0.0.1", providers=3, seed=99)
        stranger = await d.start(
            "worker",
            "--concurrency",
            "2",
            env=net.host_env(**other_yagna, **app),
            log="worker.log",
        )
        for proc in (*workers, stranger):
            await proc.wait_for_line("listening on", 60)
        command = ("supervise", APP, "--workers", "4", "--run-id", "lan")
        sup = await net.a.start(*command, env=net.host_env(**app), log="supervise.log")
        # A standby on B takes over when A's supervisor is killed.
        await wait_for(net.local_dsn, "SELECT count(*) FROM tasks.run", lambda n: n == 1, 60)
        standby = await b.start(*command, "--standby", env=net.host_env(**app), log="standby.log")
        await standby.wait_for_line("taking over when it stops", 60)
        await wait_for(
            net.local_dsn,
            "SELECT count(*) FROM tasks.task WHERE run_id = 'lan' AND status = 'done'",
            lambda n: n >= 2,
            120,
        )
        sup.signal(signal.SIGKILL)
        assert await standby.wait(180) == 0, standby.output()
        assert "standby: taking over run lan from A:" in standby.output(10_000)

        # Both B and C drove activities and ran tasks; nobody else did (not D).
        await assert_run_checked(net, "lan", tasks, {"B", "C"}, supervisors=["A", "B"])

        # D took no job of the run and said why, naming both requestors, once.
        owner = await value(net.local_dsn, "SELECT requestor_id FROM tasks.run WHERE id = 'lan'")
        [mine] = re.findall(r"of requestor (\S+) listening", stranger.output(10_000))
        assert owner and mine and owner != mine
        said = [line for line in stranger.output(10_000).splitlines() if "belongs to" in line]
        assert len(said) == 1, stranger.output()
        assert f"run lan belongs to requestor {owner}" in said[0] and mine in said[0]
        assert stranger.proc.returncode is None, stranger.output()
        # Nor can a supervisor of D resume the run.
        refused = await d.start(
            *command, env=net.host_env(**other_yagna, **app), log="supervise.log"
        )
        assert await refused.wait(60) == 2
        assert f"run lan belongs to requestor {owner}" in refused.output(), refused.output()


async def test_worker_host_link_down_20s_smoke(tmp_path: Path) -> None:
    # The lease is shorter than the cut: B's claims go back to the queue while it is away.
    size = Size(tasks=40, sleep=1.0, providers=5, concurrency={"B": 2, "C": 1}, lease_s=8)
    figures = await worker_host_link_down(tmp_path, size, cut_s=20)
    print(f"\n{figures}")


async def test_standby_takes_over_when_the_supervisor_host_vanishes_smoke(
    tmp_path: Path,
) -> None:
    # Enough tasks that debit notes come while the run has no supervisor (every 12 s).
    size = Size(tasks=60, sleep=1.0, providers=5, concurrency={"B": 2, "C": 2})
    _, figures = await standby_takes_over(tmp_path, size, cut_link=True)
    print(f"\n{figures}")
