"""Several hosts, one DSN, when hosts fail: a worker host's link down mid-run, and a standby
supervisor taking over when the run's supervisor is killed or its host vanishes.

Real processes in real network namespaces (see ``tests/support/netns.py``). Host A serves
the embedded PostgreSQL and the devnet (the requestor's yagna): a host whose loss takes the
database and yagna with it cannot be taken over by anyone, so the supervisor whose host
vanishes runs on its own host S. Takeover times are printed (``-s``) for the notes.
"""

from __future__ import annotations

import asyncio
import signal
import time
from decimal import Decimal
from pathlib import Path

import pytest

from tests.integration.pipeline_support import APP, rows, value, wait_for
from tests.support.cluster import assert_done_once, cluster, spent
from tests.support.netns import Host, HostProcess, unavailable

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.timeout(900),
    pytest.mark.skipif(unavailable() is not None, reason=str(unavailable())),
]

BUDGET = Decimal("5")


async def done_count(dsn: str, run_id: str) -> int:
    return int(
        await value(
            dsn, "SELECT count(*) FROM tasks.task WHERE run_id = %s AND status = 'done'", run_id
        )
    )


async def supervise(host: Host, env: dict[str, str], run_id: str, *extra: str) -> HostProcess:
    return await host.start(
        "supervise",
        APP,
        "--workers",
        "4",
        "--run-id",
        run_id,
        "--budget",
        f"{BUDGET}/h",
        *extra,
        env=env,
        log=f"supervise{'-standby' if extra else ''}.log",
    )


async def test_worker_host_link_down_20s(tmp_path: Path) -> None:
    tasks = 120
    async with cluster(tmp_path, ["B", "C"], providers=8, seed=21) as net:
        b, c = net.lan.hosts["B"], net.lan.hosts["C"]
        env = net.host_env(MULTIPLY_TASKS=str(tasks), MULTIPLY_SLEEP="0.5")
        wb = await b.start("worker", "--concurrency", "2", env=env, log="worker.log")
        wc = await c.start("worker", "--concurrency", "4", env=env, log="worker.log")
        for proc in (wb, wc):
            await proc.wait_for_line("listening on", 60)
        sup = await supervise(net.a, env, "cut")
        await wait_for(
            net.local_dsn,
            "SELECT count(*) FROM tasks.task t JOIN tasks.activity a ON a.id = t.activity_id "
            "WHERE t.run_id = 'cut' AND t.status = 'done' AND a.worker LIKE 'B:%%'",
            lambda n: n >= 5,
            120,
        )
        before = await done_count(net.local_dsn, "cut")
        with net.lan.cut(b):
            await asyncio.sleep(20)
        back = await value(net.local_dsn, "SELECT now()")
        during = await done_count(net.local_dsn, "cut")
        assert await sup.wait(600) == 0, sup.output()
        # B, once back, stored results again; it never went away.
        assert wb.proc.returncode is None, wb.output()
        after = await value(
            net.local_dsn,
            "SELECT count(*) FROM tasks.task t JOIN tasks.activity a ON a.id = t.activity_id "
            "WHERE t.run_id = 'cut' AND a.worker LIKE 'B:%%' AND t.finished_at > %s",
            back,
        )
        assert after > 0
        await assert_done_once(net.local_dsn, "cut", tasks)
        requeued = await value(
            net.local_dsn,
            "SELECT count(*) FROM tasks.error WHERE run_id = 'cut'",
        )
        by_host = await net.by_host(
            "SELECT a.worker FROM tasks.task t JOIN tasks.activity a ON a.id = t.activity_id "
            "WHERE t.run_id = %s",
            "cut",
        )
        assert sum(by_host.values()) == tasks and by_host.get("C"), by_host
        assert await net.undecided("cut") == []
        assert await spent(net.local_dsn, "cut") <= BUDGET
        print(  # the figures for the notes
            f"\nlink down 20s: {before} done before, {during - before} during, "
            f"results by host {by_host} (B after it came back: {after}), "
            f"errors recorded {requeued}"
        )


async def _standby_takes_over(tmp_path: Path, *, cut_link: bool) -> None:
    tasks = 80
    run_id = "standby-cut" if cut_link else "standby-kill"
    names = ["S", "B", "C"] if cut_link else ["B", "C"]
    async with cluster(tmp_path, names, providers=8, seed=31) as net:
        b, c = net.lan.hosts["B"], net.lan.hosts["C"]
        first_host = net.lan.hosts["S"] if cut_link else net.a
        env = net.host_env(MULTIPLY_TASKS=str(tasks), MULTIPLY_SLEEP="1")
        for host in (b, c):
            worker = await host.start("worker", "--concurrency", "3", env=env, log="worker.log")
            await worker.wait_for_line("listening on", 60)
        first = await supervise(first_host, env, run_id)
        await wait_for(net.local_dsn, "SELECT count(*) FROM tasks.run", lambda n: n == 1, 60)
        standby = await supervise(b, env, run_id, "--standby")
        await standby.wait_for_line("taking over when it stops", 60)
        await wait_for(
            net.local_dsn,
            "SELECT count(*) FROM tasks.task WHERE run_id = %s AND status = 'done'",
            lambda n: n >= 3,
            120,
            run_id,
        )
        [row] = await rows(net.local_dsn, "SELECT supervisor FROM tasks.run WHERE id = %s", run_id)
        assert str(row["supervisor"]).startswith(f"{first_host.name}:")
        await asyncio.sleep(3)
        assert "taking over run" not in standby.output(10_000)  # not while the first lives

        status = await value(net.local_dsn, "SELECT status FROM tasks.run WHERE id = %s", run_id)
        assert status == "running", "the run ended before its supervisor could be lost"
        lost = time.monotonic()
        if cut_link:
            net.lan.link(first_host, False)
        else:
            first.signal(signal.SIGKILL)
        await wait_for(
            net.local_dsn,
            "SELECT supervisor FROM tasks.run WHERE id = %s",
            lambda name: str(name).startswith("B:"),
            120,
            run_id,
        )
        takeover = time.monotonic() - lost
        if cut_link:
            # Cut off, the first supervisor gave up its run on its own (exit 4) and acts no more.
            assert await first.wait(60) == 4, first.output()
            assert "lost the run's lock" in first.output(10_000), first.output()
            net.lan.link(first_host, True)
        assert await standby.wait(600) == 0, standby.output()
        await assert_done_once(net.local_dsn, run_id, tasks)
        assert await net.undecided(run_id) == []
        total = await spent(net.local_dsn, run_id)
        assert total <= BUDGET
        print(  # the figures for the notes
            f"\nstandby takeover after {'link down' if cut_link else 'SIGKILL'}: "
            f"{takeover:.1f}s; spent {total}"
        )


async def test_standby_takes_over_a_killed_supervisor(tmp_path: Path) -> None:
    await _standby_takes_over(tmp_path, cut_link=False)


async def test_standby_takes_over_when_the_supervisor_host_vanishes(tmp_path: Path) -> None:
    await _standby_takes_over(tmp_path, cut_link=True)
