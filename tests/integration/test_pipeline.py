"""The run pipeline end to end: real supervisor and worker processes, the embedded
PostgreSQL and a devnet over HTTP."""

from __future__ import annotations

import asyncio
import signal
from decimal import Decimal
from pathlib import Path

import pytest

from tests.integration.pipeline_support import (
    APP,
    Cli,
    devnet,
    env_for,
    rows,
    unpaid_documents,
    value,
    wait_for,
)
from tests.support.audit import audit_run

pytestmark = pytest.mark.timeout(240)


async def assert_run_closed(dsn: str, run_id: str) -> None:
    """Every agreement terminated, every approved agreement's invoice decided (accepted,
    or rejected as an overcharge)."""
    live = await value(
        dsn,
        "SELECT count(*) FROM tasks.agreement WHERE run_id = %s AND status IN "
        "('pending', 'approved')",
        run_id,
    )
    assert live == 0
    missing = await rows(
        dsn,
        "SELECT a.id FROM tasks.agreement a WHERE a.run_id = %s AND a.approved_at IS NOT NULL "
        "AND NOT EXISTS (SELECT 1 FROM tasks.invoice i WHERE i.agreement_id = a.id "
        "AND i.status IN ('accepted', 'rejected'))",
        run_id,
    )
    assert missing == []
    open_activities = await value(
        dsn,
        "SELECT count(*) FROM tasks.activity WHERE run_id = %s "
        "AND status NOT IN ('stopped', 'failed')",
        run_id,
    )
    assert open_activities == 0


async def test_fifty_tasks_on_three_activities(installed_dsn: str, tmp_path: Path) -> None:
    async with devnet(providers=5, seed=3) as net:
        env = env_for(net, installed_dsn, MULTIPLY_TASKS="50")
        cli = await Cli.start(
            "run", APP, "--workers", "3", "--run-id", "fifty", env=env, log=tmp_path / "run.log"
        )
        assert await cli.wait() == 0, cli.output()
        await audit_run(net, installed_dsn, "fifty")
    tasks = await rows(
        installed_dsn,
        "SELECT key, status, result, attempts FROM tasks.task "
        "WHERE run_id = 'fifty' ORDER BY position",
    )
    assert [(t["key"], t["status"], t["result"]) for t in tasks] == [
        (str(n), "done", n * 7) for n in range(50)
    ]
    activities = await value(
        installed_dsn,
        "SELECT count(DISTINCT activity_id) FROM tasks.task WHERE run_id = 'fifty'",
    )
    assert activities == 3
    batches = await value(installed_dsn, "SELECT count(*) FROM tasks.batch WHERE run_id = 'fifty'")
    assert batches == 50
    assert await value(installed_dsn, "SELECT status FROM tasks.run WHERE id = 'fifty'") == (
        "finished"
    )
    await assert_run_closed(installed_dsn, "fifty")
    # What a user sees of it.
    views = {}
    for command in (("summary",), ("show",), ("runs",)):
        cli = await Cli.start(*command, env=env, log=tmp_path / f"{command[0]}.log")
        assert await cli.wait() == 0, cli.output()
        views[command[0]] = cli.output(200)
    assert "fifty" in views["summary"] and "50 done, 0 failed" in views["summary"]
    assert "3/3 invoices accepted" in views["summary"]
    assert "activities" in views["show"] and views["show"].count("no more") == 3
    assert "fifty" in views["runs"] and "50/50" in views["runs"]


async def test_two_worker_processes_share_a_run(installed_dsn: str, tmp_path: Path) -> None:
    async with devnet(providers=6, seed=4) as net:
        env = env_for(net, installed_dsn, MULTIPLY_TASKS="40", MULTIPLY_SLEEP="0.2")
        workers = await Cli.start(
            "worker", "--processes", "2", "--concurrency", "2", env=env, log=tmp_path / "w.log"
        )
        try:
            sup = await Cli.start(
                "supervise",
                APP,
                "--workers",
                "4",
                "--run-id",
                "shared",
                env=env,
                log=tmp_path / "sup.log",
            )
            assert await sup.wait() == 0, sup.output()
        finally:
            await workers.stop()
        assert workers.proc.returncode == 0, workers.output()
        await audit_run(net, installed_dsn, "shared")
    drivers = await rows(
        installed_dsn,
        "SELECT DISTINCT split_part(worker, ':', 2) AS pid FROM tasks.activity "
        "WHERE run_id = 'shared'",
    )
    pids = {row["pid"] for row in drivers}
    assert len(pids) == 2 and str(workers.proc.pid) not in pids
    done = await value(
        installed_dsn, "SELECT count(*) FROM tasks.task WHERE run_id = 'shared' AND status = 'done'"
    )
    assert done == 40
    await assert_run_closed(installed_dsn, "shared")


async def test_worker_started_mid_run_takes_work(installed_dsn: str, tmp_path: Path) -> None:
    async with devnet(providers=6, seed=5) as net:
        env = env_for(net, installed_dsn, MULTIPLY_TASKS="40", MULTIPLY_SLEEP="0.3")
        first = await Cli.start("worker", "--concurrency", "1", env=env, log=tmp_path / "w1.log")
        second = None
        try:
            sup = await Cli.start(
                "supervise",
                APP,
                "--workers",
                "3",
                "--run-id",
                "midrun",
                env=env,
                log=tmp_path / "sup.log",
            )
            await wait_for(
                installed_dsn,
                "SELECT count(*) FROM tasks.task WHERE run_id = 'midrun' AND status = 'done'",
                lambda n: n >= 5,
                60,
            )
            second = await Cli.start(
                "worker", "--concurrency", "4", env=env, log=tmp_path / "w2.log"
            )
            assert await sup.wait() == 0, sup.output()
        finally:
            await first.stop()
            if second is not None:
                await second.stop()
        await audit_run(net, installed_dsn, "midrun")
    assert second is not None
    late = await value(
        installed_dsn,
        "SELECT count(*) FROM tasks.task t JOIN tasks.activity a ON a.id = t.activity_id "
        "WHERE t.run_id = 'midrun' AND t.status = 'done' AND a.worker LIKE %s",
        f"%:{second.proc.pid}:%",
    )
    assert late > 0


async def test_always_failing_task_ends_failed_while_the_rest_finish(
    installed_dsn: str, tmp_path: Path
) -> None:
    async with devnet(providers=4, seed=6) as net:
        env = env_for(net, installed_dsn, MULTIPLY_TASKS="20", MULTIPLY_FAIL="7")
        cli = await Cli.start(
            "run", APP, "--workers", "2", "--run-id", "failing", env=env, log=tmp_path / "run.log"
        )
        assert await cli.wait() == 1, cli.output()
        await audit_run(net, installed_dsn, "failing")
    tasks = {
        t["key"]: t
        for t in await rows(installed_dsn, "SELECT * FROM tasks.task WHERE run_id = 'failing'")
    }
    bad = tasks.pop("7")
    assert bad["status"] == "failed" and bad["attempts"] == 2
    assert "this task always fails" in bad["error"] or "exit" in bad["error"].lower()
    assert all(t["status"] == "done" for t in tasks.values())
    errors = await value(
        installed_dsn, "SELECT count(*) FROM tasks.error WHERE run_id = 'failing' AND kind = 'task'"
    )
    assert errors == 2
    assert await value(installed_dsn, "SELECT status FROM tasks.run WHERE id = 'failing'") == (
        "failed"
    )
    await assert_run_closed(installed_dsn, "failing")


async def test_task_over_its_timeout_fails_on_that_activity(
    installed_dsn: str, tmp_path: Path
) -> None:
    async with devnet(providers=3, seed=14) as net:
        env = env_for(
            net, installed_dsn, MULTIPLY_TASKS="6", MULTIPLY_SLOW="2", MULTIPLY_TIMEOUT="1.5"
        )
        cli = await Cli.start(
            "run", APP, "--workers", "2", "--run-id", "timeout", env=env, log=tmp_path / "run.log"
        )
        assert await cli.wait() == 1, cli.output()
        await audit_run(net, installed_dsn, "timeout")
    tasks = {
        t["key"]: t
        for t in await rows(installed_dsn, "SELECT * FROM tasks.task WHERE run_id = 'timeout'")
    }
    slow = tasks.pop("2")
    assert (slow["status"], slow["attempts"]) == ("failed", 2)
    assert slow["error"] == "timed out after 1.5s"
    assert all(t["status"] == "done" for t in tasks.values())


async def test_endless_tasks_keep_a_bounded_window(installed_dsn: str, tmp_path: Path) -> None:
    async with devnet(providers=3, seed=7) as net:
        env = env_for(net, installed_dsn, MULTIPLY_ENDLESS="1")
        cli = await Cli.start(
            "run",
            APP,
            "--workers",
            "2",
            "--feed-window",
            "25",
            "--run-id",
            "endless",
            env=env,
            log=tmp_path / "run.log",
        )
        await wait_for(
            installed_dsn,
            "SELECT count(*) FROM tasks.task WHERE run_id = 'endless' AND status = 'done'",
            lambda n: n >= 30,
            90,
        )
        samples = []
        for _ in range(5):
            samples.append(
                await value(
                    installed_dsn,
                    "SELECT count(*) FROM tasks.task "
                    "WHERE run_id = 'endless' AND status = 'pending'",
                )
            )
            await asyncio.sleep(0.3)
        cli.signal(signal.SIGINT)
        assert await cli.wait() == 130, cli.output()
        await audit_run(net, installed_dsn, "endless")
    assert max(samples) <= 25
    run = (await rows(installed_dsn, "SELECT * FROM tasks.run WHERE id = 'endless'"))[0]
    assert run["status"] == "stopped" and not run["feed_done"]
    await assert_run_closed(installed_dsn, "endless")


EXPENSIVE = {
    "name": "pricey",
    "count": 3,
    "price_duration_hour": 36.0,
    "price_cpu_hour": 36.0,
    "price_start": 0.0,
}


#: 0.0001 per second of an activity's life, debit notes every second.
METERED = {"name": "metered", "count": 4, "price_duration_hour": 0.36, "price_cpu_hour": 0.0}
SPEND = """
    SELECT coalesce(sum(increment), 0) FROM (
        SELECT increment FROM tasks.debit_note WHERE run_id = %s AND status = 'accepted'
        UNION ALL
        SELECT increment FROM tasks.invoice WHERE run_id = %s AND status = 'accepted')
    AS spent"""


async def test_small_budget_stops_the_run_and_pays_for_all_it_ordered(
    installed_dsn: str, tmp_path: Path
) -> None:
    """The budget is prospective: the run stops while what its activities may still charge
    fits, so every debit note and invoice of the work ordered is accepted (the audit), and
    a run resumed in the same hour hires nobody it could not pay."""
    budget = Decimal("0.006")
    async with devnet([METERED], seed=8) as net:
        env = env_for(net, installed_dsn, MULTIPLY_TASKS="200", MULTIPLY_SLEEP="0.5")
        command = (
            "run",
            APP,
            "--workers",
            "2",
            "--debit-note-interval",
            "1",
            "--run-id",
            "budget",
        )
        cli = await Cli.start(
            *command, "--budget", f"{budget}/h", env=env, log=tmp_path / "run.log"
        )
        assert await cli.wait(180) == 3, cli.output()
        first = await audit_run(net, installed_dsn, "budget")
        assert first.rejected == 0 and first.debit_notes >= 5 and first.invoices == 2
        assert 0 < first.accepted <= budget
        assert first.done < 200
        run = (await rows(installed_dsn, "SELECT * FROM tasks.run WHERE id = 'budget'"))[0]
        assert run["status"] == "stopped" and run["stop_reason"].startswith("budget reached")
        agreements = await value(
            installed_dsn, "SELECT count(*) FROM tasks.agreement WHERE run_id = 'budget'"
        )
        # Resumed in the same hour with a budget that leaves less than one new activity
        # could charge: nobody is hired, the run stops at once, and all is still paid.
        smaller = first.accepted + Decimal("0.001")
        again = await Cli.start(
            *command, "--budget", f"{smaller}/h", env=env, log=tmp_path / "again.log"
        )
        assert await again.wait(60) == 3, again.output()
        assert "no provider can be hired" in again.output()
        second = await audit_run(net, installed_dsn, "budget")
    assert second.accepted == first.accepted and second.rejected == 0
    assert agreements == await value(
        installed_dsn, "SELECT count(*) FROM tasks.agreement WHERE run_id = 'budget'"
    )
    await assert_run_closed(installed_dsn, "budget")


@pytest.mark.parametrize("daemon_rejects", [True, False], ids=["rejects", "yagna-0.17.6"])
async def test_a_provider_that_overcharges_is_rejected_and_not_hired_again(
    installed_dsn: str, tmp_path: Path, daemon_rejects: bool
) -> None:
    """A document that does not fit the budget kept for its activity charged more than the
    provider's prices allow: it is rejected through yagna, recorded with its reason, and
    the provider is not hired again; honest providers finish the run. A daemon that does
    not implement debit-note rejection (yagna 0.17.6 answers 501) changes none of that."""
    liar = {**METERED, "name": "liar", "count": 1, "faults": {"overcharge": 1000.0}}
    honest = {**METERED, "count": 2, "price_duration_hour": 0.72}
    async with devnet([liar, honest], seed=15, debit_note_rejection=daemon_rejects) as net:
        env = env_for(net, installed_dsn, MULTIPLY_TASKS="30", MULTIPLY_SLEEP="0.2")
        cli = await Cli.start(
            "run",
            APP,
            "--workers",
            "2",
            "--budget",
            "0.05/h",
            "--debit-note-interval",
            "1",
            "--run-id",
            "liar",
            env=env,
            log=tmp_path / "run.log",
        )
        assert await cli.wait(180) == 0, cli.output()
        figures = await audit_run(net, installed_dsn, "liar")
    assert figures.done == 30 and figures.rejected >= 1
    rejected = await rows(
        installed_dsn,
        "SELECT ag.provider_name, d.reason FROM tasks.debit_note d "
        "JOIN tasks.agreement ag ON ag.id = d.agreement_id "
        "WHERE d.run_id = 'liar' AND d.status = 'rejected'",
    )
    assert rejected and {r["provider_name"] for r in rejected} == {"liar-1"}
    assert all("charged more than the budget kept for it" in r["reason"] for r in rejected)
    hired = await rows(
        installed_dsn,
        "SELECT provider_name, avoid_reason FROM tasks.agreement WHERE run_id = 'liar' "
        "AND provider_name = 'liar-1'",
    )
    assert len(hired) == 1 and "rejected" in hired[0]["avoid_reason"]
    errors = await value(
        installed_dsn,
        "SELECT count(*) FROM tasks.error WHERE run_id = 'liar' AND kind = 'overcharge'",
    )
    assert errors >= 1
    await assert_run_closed(installed_dsn, "liar")


async def test_max_price_stops_expensive_providers_and_keeps_cheap_ones(
    installed_dsn: str, tmp_path: Path
) -> None:
    cheap = {**EXPENSIVE, "name": "cheap", "price_duration_hour": 0.0036, "price_cpu_hour": 0.0036}
    async with devnet([cheap, EXPENSIVE], seed=9) as net:
        env = env_for(net, installed_dsn, MULTIPLY_TASKS="150", MULTIPLY_SLEEP="0.3")
        cli = await Cli.start(
            "run",
            APP,
            "--workers",
            "6",
            "--max-price",
            "0.001",
            "--warmup",
            "2",
            "--debit-note-interval",
            "1",
            "--budget",
            "100/h",
            "--run-id",
            "maxprice",
            env=env,
            log=tmp_path / "run.log",
        )
        assert await cli.wait(180) == 0, cli.output()
        await audit_run(net, installed_dsn, "maxprice")
    acts = await rows(
        installed_dsn,
        """
        SELECT ag.provider_name, act.status, act.stop_reason, act.stop_request
        FROM tasks.activity act JOIN tasks.agreement ag ON ag.id = act.agreement_id
        WHERE act.run_id = 'maxprice'""",
    )
    pricey = [a for a in acts if a["provider_name"].startswith("pricey")]
    cheap_ones = [a for a in acts if a["provider_name"].startswith("cheap")]
    assert pricey and cheap_ones
    assert all((a["stop_reason"] or "").startswith("cost:") for a in pricey), pricey
    assert not any((a["stop_reason"] or "").startswith("cost:") for a in cheap_ones), cheap_ones
    done = await value(
        installed_dsn,
        "SELECT count(*) FROM tasks.task WHERE run_id = 'maxprice' AND status = 'done'",
    )
    assert done == 150


async def test_providers_that_fail_deploy_are_replaced(installed_dsn: str, tmp_path: Path) -> None:
    broken = {
        "name": "broken",
        "count": 2,
        "price_duration_hour": 0.0001,
        "faults": {"deploy_failure": 1.0},
    }
    good = {"name": "good", "count": 3, "price_duration_hour": 0.01}
    async with devnet([broken, good], seed=10) as net:
        env = env_for(net, installed_dsn, MULTIPLY_TASKS="20")
        cli = await Cli.start(
            "run", APP, "--workers", "2", "--run-id", "deploy", env=env, log=tmp_path / "run.log"
        )
        assert await cli.wait(120) == 0, cli.output()
        await audit_run(net, installed_dsn, "deploy")
    acts = await rows(
        installed_dsn,
        """
        SELECT ag.provider_name, act.status, act.stop_reason
        FROM tasks.activity act JOIN tasks.agreement ag ON ag.id = act.agreement_id
        WHERE act.run_id = 'deploy'""",
    )
    failed = [a for a in acts if a["status"] == "failed"]
    assert failed and all(a["provider_name"].startswith("broken") for a in failed)
    assert all(a["stop_reason"].startswith("deploy failed") for a in failed)
    # A provider that failed is not hired again.
    names = [a["provider_name"] for a in failed]
    assert len(names) == len(set(names))
    await assert_run_closed(installed_dsn, "deploy")


async def test_supervisor_killed_and_resumed_finishes_every_task_once(
    installed_dsn: str, tmp_path: Path
) -> None:
    async with devnet(providers=5, seed=11) as net:
        env = env_for(net, installed_dsn, MULTIPLY_TASKS="60", MULTIPLY_SLEEP="0.3")
        worker = await Cli.start("worker", "--concurrency", "5", env=env, log=tmp_path / "w.log")
        try:
            # Debit notes every second: some arrive while no supervisor listens.
            supervise = (
                "supervise",
                APP,
                "--workers",
                "3",
                "--run-id",
                "resume",
                "--debit-note-interval",
                "1",
            )
            first = await Cli.start(*supervise, env=env, log=tmp_path / "sup1.log")
            await wait_for(
                installed_dsn,
                "SELECT count(*) FROM tasks.task WHERE run_id = 'resume' AND status = 'done'",
                lambda n: n >= 10,
                90,
            )
            before = {
                r["id"]
                for r in await rows(
                    installed_dsn,
                    "SELECT id FROM tasks.agreement WHERE run_id = 'resume' "
                    "AND status = 'approved'",
                )
            }
            first.signal(signal.SIGKILL)
            await first.wait()
            await asyncio.sleep(3)  # debit notes keep coming with nobody to accept them
            restart_at = await value(installed_dsn, "SELECT now()")
            second = await Cli.start(*supervise, env=env, log=tmp_path / "sup2.log")
            assert await second.wait(150) == 0, second.output()
        finally:
            await worker.stop()
        # Every debit note and invoice, also those sent while no supervisor listened, is
        # accepted in yagna: no provider waits for its money.
        assert await unpaid_documents(net) == []
        await audit_run(net, installed_dsn, "resume")
    notes = await value(
        installed_dsn,
        "SELECT count(*) FROM tasks.debit_note WHERE run_id = 'resume' AND status = 'accepted'",
    )
    assert notes >= 5
    assert "waiting in yagna queued again" in second.output(400)
    tasks = await rows(
        installed_dsn,
        "SELECT key, status, result FROM tasks.task WHERE run_id = 'resume' ORDER BY position",
    )
    assert [(t["key"], t["status"], t["result"]) for t in tasks] == [
        (str(n), "done", n * 7) for n in range(60)
    ]
    # One stored result per task, and each successful run left exactly one batch.
    batches = await value(
        installed_dsn,
        "SELECT count(*) FROM tasks.batch b JOIN tasks.task t "
        "ON t.id = b.task_id AND t.attempts = b.attempt "
        "WHERE t.run_id = 'resume'",
    )
    assert batches == 60
    # Agreements made before the kill kept working for the second supervisor.
    reused = await value(
        installed_dsn,
        "SELECT count(DISTINCT a.agreement_id) FROM tasks.task t "
        "JOIN tasks.activity a ON a.id = t.activity_id "
        "WHERE t.run_id = 'resume' AND a.agreement_id = ANY(%s) AND t.finished_at > %s",
        list(before),
        restart_at,
    )
    assert reused >= 1
    await assert_run_closed(installed_dsn, "resume")


async def test_callable_style_app_under_run(installed_dsn: str, tmp_path: Path) -> None:
    async with devnet(providers=3, seed=12) as net:
        env = env_for(net, installed_dsn)
        cli = await Cli.start(
            "run",
            "examples/hello_world_callables.py",
            "--workers",
            "2",
            "--run-id",
            "callables",
            env=env,
            log=tmp_path / "run.log",
        )
        assert await cli.wait() == 0, cli.output()
        await audit_run(net, installed_dsn, "callables")
    tasks = await rows(
        installed_dsn,
        "SELECT key, status, result, data FROM tasks.task "
        "WHERE run_id = 'callables' ORDER BY position",
    )
    assert [(t["key"], t["status"], t["result"]) for t in tasks] == [
        (str(n), "done", n * 7) for n in range(10)
    ]
    assert tasks[0]["data"]["callable"].endswith("get_tasks.<locals>.task")


async def test_runner_api_and_results_export(
    installed_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from golem_tasks.runner import Runner

    monkeypatch.setenv("MULTIPLY_TASKS", "12")
    async with devnet(providers=3, seed=13) as net:
        for key, val in net.env().items():
            monkeypatch.setenv(key, val)
        outcome = await Runner(APP, workers=2, run_id="api", dsn=installed_dsn).main()
        await audit_run(net, installed_dsn, "api")
    assert (outcome.status, outcome.exit_code, outcome.counts.done) == ("finished", 0, 12)
    out = tmp_path / "results.csv"
    cli = await Cli.start(
        "results",
        "--run-id",
        "api",
        "--format",
        "csv",
        "--output",
        str(out),
        env=env_for(net, installed_dsn),
        log=tmp_path / "results.log",
    )
    assert await cli.wait() == 0, cli.output()
    lines = out.read_text().splitlines()
    assert lines[0].startswith("key,status,result,attempts,error,activity_id")
    assert len(lines) == 13 and lines[1].startswith("0,done,0,1,,")
