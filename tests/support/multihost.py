"""The multi-host failure scenarios, written once: a worker host's link down mid-run, and a
standby supervisor taking over a killed supervisor or one whose host vanished.

``make test`` runs them as short smokes (``tests/integration/test_multihost.py``),
``make chaos`` at full size (``tests/chaos/test_multihost.py``); only the sizes differ.
Each ends with the same checks: every task done exactly once, the hosts that should have
driven activities did, the REST audit of the run (no document left RECEIVED, the ledger
equal to what the network spent), and the record of who held the run showing one
supervisor acting at a time.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import signal
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from tests.integration.pipeline_support import APP, rows, value, wait_for
from tests.support.cluster import Cluster, assert_done_once, cluster
from tests.support.netns import Host, HostProcess

BUDGET = Decimal("5")


@dataclass(frozen=True)
class Size:
    tasks: int
    sleep: float  # seconds per task
    providers: int
    #: Activities each worker host drives at once, by host name.
    concurrency: dict[str, int]
    #: The workers' claim lease (``worker --lease``).
    lease_s: float = 30.0
    #: The devnet's simulated time against real time: at 10, a debit note every 12 s.
    time_scale: float = 10.0


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


async def start_workers(net: Cluster, env: dict[str, str], size: Size) -> dict[str, HostProcess]:
    """The worker of every worker host; call :func:`listening` before relying on them."""
    workers = {}
    for name, concurrency in size.concurrency.items():
        workers[name] = await net.lan.hosts[name].start(
            "worker",
            "--concurrency",
            str(concurrency),
            "--lease",
            str(size.lease_s),
            env=env,
            log="worker.log",
        )
    return workers


async def listening(workers: dict[str, HostProcess]) -> None:
    for proc in workers.values():
        await proc.wait_for_line("listening on", 60)


def log_time(output: str, text: str) -> datetime:
    """When a process logged its first line holding ``text``."""
    for line in output.splitlines():
        if text in line:
            return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
    raise AssertionError(f"no {text!r} in:\n{output}")


async def done_count(dsn: str, run_id: str) -> int:
    return int(
        await value(
            dsn, "SELECT count(*) FROM tasks.task WHERE run_id = %s AND status = 'done'", run_id
        )
    )


async def supervisor_terms(dsn: str, run_id: str) -> list[dict[str, object]]:
    """Who held the run, and from when to when it last acted, in order."""
    return await rows(
        dsn,
        "SELECT supervisor, took_at, seen_at FROM tasks.supervisor_term "
        "WHERE run_id = %s ORDER BY took_at",
        run_id,
    )


async def assert_one_supervisor_at_a_time(dsn: str, run_id: str, hosts: list[str]) -> None:
    """The run was held by supervisors on ``hosts``, one after the other, each one's last
    act (its last tick, on the database's clock) before the next one took the run."""
    terms = await supervisor_terms(dsn, run_id)
    assert [str(t["supervisor"]).split(":", 1)[0] for t in terms] == hosts, terms
    for before, after in itertools.pairwise(terms):
        assert before["seen_at"] < after["took_at"], (before, after)  # type: ignore[operator]


async def assert_run_checked(
    net: Cluster, run_id: str, tasks: int, worker_hosts: set[str], supervisors: list[str]
) -> str:
    """Every check a multi-host scenario ends with; the audit's figures."""
    await assert_done_once(net.local_dsn, run_id, tasks)
    activities = await net.by_host("SELECT worker FROM tasks.activity WHERE run_id = %s", run_id)
    assert set(activities) == worker_hosts, activities
    ran = await net.by_host(
        "SELECT a.worker FROM tasks.task t JOIN tasks.activity a ON a.id = t.activity_id "
        "WHERE t.run_id = %s",
        run_id,
    )
    assert set(ran) == worker_hosts and sum(ran.values()) == tasks, ran
    audit = await net.audit(run_id)
    budget = await value(
        net.local_dsn, "SELECT budget_per_hour FROM tasks.run WHERE id = %s", run_id
    )
    assert audit.accepted <= budget  # the run lasts less than its first hour
    await assert_one_supervisor_at_a_time(net.local_dsn, run_id, supervisors)
    return f"results by host {ran}; {audit.line()}"


async def worker_host_link_down(tmp_path: Path, size: Size, *, cut_s: float = 20.0) -> str:
    """Scenario 2: B's link goes down ``cut_s`` mid-run. Its claims return to the queue when
    their leases end (if the lease is shorter than the cut), C and B (once back) finish the
    run, nothing is done twice, and no debit note is left undecided. Returns the figures
    for the notes."""
    run_id = "cut"
    async with cluster(
        tmp_path,
        list(size.concurrency),
        providers=size.providers,
        seed=21,
        time_scale=size.time_scale,
    ) as net:
        b = net.lan.hosts["B"]
        env = net.host_env(MULTIPLY_TASKS=str(size.tasks), MULTIPLY_SLEEP=str(size.sleep))
        workers = await start_workers(net, env, size)
        sup = await supervise(net.a, env, run_id)  # while the workers start
        await listening(workers)
        await wait_for(
            net.local_dsn,
            "SELECT count(*) FROM tasks.task t JOIN tasks.activity a ON a.id = t.activity_id "
            "WHERE t.run_id = %s AND t.status = 'done' AND a.worker LIKE 'B:%%'",
            lambda n: n >= 2,
            120,
            run_id,
        )
        before = await done_count(net.local_dsn, run_id)
        with net.lan.cut(b):
            # B can write nothing now: what it holds is what the others must get back.
            held = [
                row["id"]
                for row in await rows(
                    net.local_dsn,
                    "SELECT t.id FROM tasks.task t JOIN tasks.activity a ON a.id = t.activity_id "
                    "WHERE t.run_id = %s AND t.status = 'claimed' AND a.worker LIKE 'B:%%'",
                    run_id,
                )
            ]
            await asyncio.sleep(cut_s)
            during = await done_count(net.local_dsn, run_id)
        back = await value(net.local_dsn, "SELECT now()")
        assert held, "B held no claim when its link went down"
        assert during > before, "C did nothing while B was away"
        status = await value(net.local_dsn, "SELECT status FROM tasks.run WHERE id = %s", run_id)
        assert status == "running", "the run ended while B was away: give it more tasks"
        assert await sup.wait(300) == 0, sup.output()
        expired = set(re.findall(r"task (\d+): claim expired", sup.output(100_000)))
        if size.lease_s < cut_s:
            # B's claims went back to the queue when their leases ended.
            assert {str(task_id) for task_id in held} <= expired, (held, sup.output())
        # B, once back, stored results again; it never went away.
        assert workers["B"].proc.returncode is None, workers["B"].output()
        after = await value(
            net.local_dsn,
            "SELECT count(*) FROM tasks.task t JOIN tasks.activity a ON a.id = t.activity_id "
            "WHERE t.run_id = %s AND a.worker LIKE 'B:%%' AND t.finished_at > %s",
            run_id,
            back,
        )
        assert after > 0, workers["B"].output()
        figures = await assert_run_checked(
            net, run_id, size.tasks, set(size.concurrency), supervisors=["A"]
        )
        charged = await value(
            net.local_dsn,
            "SELECT count(*) FROM tasks.task WHERE run_id = %s AND attempts > 1",
            run_id,
        )
        return (
            f"link down {cut_s:g}s: {before} done before, {during - before} during, "
            f"B held {len(held)} claims ({len(expired & {str(i) for i in held})} of them "
            f"expired, lease {size.lease_s:g}s), B after it came back: "
            f"{after}; tasks charged more than one attempt: {charged}; {figures}"
        )


async def standby_takes_over(tmp_path: Path, size: Size, *, cut_link: bool) -> tuple[float, str]:
    """Scenario 3: a standby supervisor on B takes over when the run's supervisor is killed
    (SIGKILL), or when its host vanishes (link down); the run completes exactly once with the
    budget kept. Cut off, the first supervisor stops acting and, when its link returns, gives
    the run up (exit 4) without touching it.

    Host A serves the database and yagna: a host whose loss takes them with it cannot be
    taken over by anyone, so the supervisor whose host vanishes runs on its own host S.
    Returns the takeover time (from the kill or the cut until the standby has written itself
    as the run's supervisor) and the figures for the notes.
    """
    run_id = "standby-cut" if cut_link else "standby-kill"
    names = ["S", *size.concurrency] if cut_link else list(size.concurrency)
    async with cluster(
        tmp_path, names, providers=size.providers, seed=31, time_scale=size.time_scale
    ) as net:
        b = net.lan.hosts["B"]
        first_host = net.lan.hosts["S"] if cut_link else net.a
        env = net.host_env(MULTIPLY_TASKS=str(size.tasks), MULTIPLY_SLEEP=str(size.sleep))
        workers = await start_workers(net, env, size)
        first = await supervise(first_host, env, run_id)  # while the workers start
        await listening(workers)
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
        margin = ""
        if cut_link:
            # Cut off, the first supervisor stopped acting at once and waits to take its
            # lock back; when its link returns it finds the standby holding the run and
            # gives it up (exit 4) without touching it.
            # ... and before the standby took the run: never two acting at once (the
            # hosts share this machine's clock).
            stopped = log_time(first.output(10_000), "lock's database connection dropped")
            took = log_time(standby.output(10_000), f"standby: taking over run {run_id}")
            assert stopped < took, (stopped, took)
            margin = f"; the cut-off one stopped {(took - stopped).total_seconds():.1f}s before"
            net.lan.link(first_host, True)
            assert await first.wait(60) == 4, first.output()
            assert "another supervisor took the run" in first.output(10_000), first.output()
        assert await standby.wait(300) == 0, standby.output()
        assert f"standby: taking over run {run_id} from {first_host.name}:" in standby.output(
            10_000
        )
        figures = await assert_run_checked(
            net,
            run_id,
            size.tasks,
            set(size.concurrency),
            supervisors=[first_host.name, "B"],
        )
        return takeover, (
            f"standby takeover after {'link down' if cut_link else 'SIGKILL'}: "
            f"{takeover:.1f}s{margin}; {figures}"
        )
