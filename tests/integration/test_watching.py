"""The views of a run (``--json``, the dashboard's JSON, /metrics, the report) built by the
real pipeline on the devnet, every number checked against the database."""

from __future__ import annotations

import asyncio
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import cli_env, run_cli
from tests.integration.pipeline_support import APP, Cli, devnet, env_for, value, wait_for
from tests.integration.watch_support import (
    check_detail,
    check_providers,
    check_summary,
    expected,
    frozen_data,
    get,
    get_json,
    serve_dashboard,
)
from tests.support.audit import audit_run

pytestmark = pytest.mark.timeout(240)

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO ")

CHEAP = {
    "name": "cheap",
    "count": 2,
    "price_duration_hour": 0.0036,
    "price_cpu_hour": 0.0036,
    "price_start": 0.0,
}
PRICEY = {
    "name": "pricey",
    "count": 2,
    "price_duration_hour": 36.0,
    "price_cpu_hour": 36.0,
    "price_start": 0.0,
}


async def cli_json(env: dict[str, str], *args: str) -> Any:
    # In a thread: the devnet serving the run lives on this event loop.
    result = await asyncio.to_thread(run_cli, *args, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def metric_values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def check_metrics(text: str, db: dict[str, Any], run_id: str) -> None:
    found = metric_values(text)
    for status, count in db["tasks"].items():
        assert found[("golem_tasks_tasks", (("run_id", run_id), ("status", status)))] == count
    for status, count in db["activities"].items():
        key = ("golem_tasks_activities", (("run_id", run_id), ("status", status)))
        assert found[key] == count
    assert found[("golem_tasks_results", (("run_id", run_id),))] == db["tasks"]["done"]
    glm = found[("golem_tasks_glm_accepted_total", (("run_id", run_id),))]
    assert glm == pytest.approx(float(db["spent"]), rel=1e-12, abs=1e-18)
    for kind, name in (("note", "golem_tasks_debit_notes"), ("invoice", "golem_tasks_invoices")):
        for decision in ("accepted", "rejected", "refused"):
            key = (name, (("decision", decision), ("run_id", run_id)))
            assert found[key] == db["docs"].get((kind, decision), (0, 0))[0]
    status = db["run"]["status"]
    assert found[("golem_tasks_run_info", (("run_id", run_id), ("status", status)))] == 1


async def check_everything(url: str, env: dict[str, str], tmp_path: Path, run_id: str) -> None:
    """Every view, against the database (the run is not changing while this runs)."""
    dsn = env["GOLEM_TASKS_DSN"]
    db = await expected(dsn, run_id)
    summary = await cli_json(env, "summary", "--run-id", run_id, "--json")
    check_summary(summary, db)
    show = await cli_json(env, "show", "--run-id", run_id, "--json", "--activities", "99")
    check_detail(show, db)
    runs = await cli_json(env, "runs", "--json")
    [listed] = [row for row in runs["runs"] if row["id"] == run_id]
    assert (listed["tasks"], listed["done"], listed["failed"]) == (
        db["total"],
        db["tasks"]["done"],
        db["tasks"]["failed"],
    )
    view = await get_json(f"{url}api/runs/{run_id}")
    check_detail(view, db)
    check_providers(view, db)
    timeline = view["timeline"]
    assert len(timeline) == 61
    assert [p["results"] for p in timeline] == sorted(p["results"] for p in timeline)
    assert timeline[-1]["results"] == db["tasks"]["done"]
    assert Decimal(timeline[-1]["glm"]) == db["spent"]
    status, text = await get(f"{url}metrics")
    assert status == 200
    check_metrics(text, db, run_id)
    report = tmp_path / "run.html"
    result = await asyncio.to_thread(
        run_cli, "report", "--run-id", run_id, "--output", str(report), env=env
    )
    assert result.returncode == 0, result.stderr
    frozen = frozen_data(report.read_text())
    check_detail(frozen["run"], db)
    check_providers(frozen["run"], db)
    assert frozen["run"]["timeline"][-1]["results"] == db["tasks"]["done"]


async def test_views_equal_the_database_before_and_after_results(
    installed_dsn: str, tmp_path: Path
) -> None:
    run_id = "watched"
    async with devnet([CHEAP, PRICEY], seed=21) as net, serve_dashboard(installed_dsn) as url:
        env = env_for(
            net,
            installed_dsn,
            GOLEM_TASKS_HOME=str(tmp_path / "home"),
            MULTIPLY_TASKS="60",
            MULTIPLY_SLEEP="0.3",
            MULTIPLY_FAIL="5",
            MULTIPLY_MAX_ATTEMPTS="2",
        )
        sup = await Cli.start(
            "supervise",
            APP,
            "--workers",
            "4",
            "--max-price",
            "0.001",
            "--warmup",
            "1",
            "--debit-note-interval",
            "1",
            "--budget",
            "100/h",
            "--run-id",
            run_id,
            env=env,
            log=tmp_path / "sup.log",
        )
        worker = None
        try:
            # No worker yet: agreements, but no activity, no result, nothing spent.
            await wait_for(
                installed_dsn,
                "SELECT count(*) FROM tasks.agreement WHERE run_id = %s AND status = 'approved'",
                lambda n: n == 4,
                60,
                run_id,
            )
            await wait_for(
                installed_dsn, "SELECT feed_done FROM tasks.run WHERE id = %s", bool, 30, run_id
            )
            before = await expected(installed_dsn, run_id)
            view = await get_json(f"{url}api/runs/{run_id}")
            db = await expected(installed_dsn, run_id)
            check_detail(view, db, before)
            check_providers(view, db)
            assert view["tasks"]["done"] == 0 and view["tasks"]["pending"] == 60
            assert view["money"]["per_result"] is None and view["speed"]["eta_s"] is None
            assert view["activities"]["wanted"] == 4 and view["activity_list"] == []
            assert all(p["glm_per_result"] is None for p in view["providers"])
            assert {p["results"] for p in view["timeline"]} == {0}
            before = await expected(installed_dsn, run_id)
            summary = await cli_json(env, "summary", "--run-id", run_id, "--json")
            check_summary(summary, await expected(installed_dsn, run_id), before)
            status, text = await get(f"{url}metrics")
            assert status == 200
            check_metrics(text, db, run_id)

            worker = await Cli.start("worker", env=env, log=tmp_path / "worker.log")
            assert await sup.wait(180) == 1, sup.output()  # one task failed its attempts
        finally:
            if worker is not None:
                await worker.stop()
            await sup.stop()
        assert await value(installed_dsn, "SELECT status FROM tasks.run WHERE id = %s", run_id) == (
            "failed"
        )
        await audit_run(net, installed_dsn, run_id)
        db = await expected(installed_dsn, run_id)
        # What this run is meant to show: costs split over many tasks and providers,
        # activities stopped by the cost manager, a failed task.
        assert db["tasks"]["done"] == 59 and db["tasks"]["failed"] == 1
        assert db["docs"][("note", "accepted")][0] > 0
        assert any(
            reason.startswith("cost:")
            for reasons in db["stop_reasons"].values()
            for reason in reasons
        )
        assert sum(1 for p in db["providers"].values() if p["done"] > 1) >= 2
        await check_everything(url, env, tmp_path, run_id)
        # Not on a terminal: the plain log lines, whole ids, and no log file.
        output = sup.output(400)
        assert TIMESTAMP.search(output) and re.search(r"agreement [0-9a-f]{64} with", output)
        assert "full log:" not in output and not (tmp_path / "home" / "logs").exists()


async def test_dashboard_command_serves_loopback_and_warns_beyond(
    installed_dsn: str, tmp_path: Path
) -> None:
    env = cli_env(GOLEM_TASKS_DSN=installed_dsn)
    cli = await Cli.start(
        "dashboard", "--listen", "127.0.0.1:0", env=env, log=tmp_path / "dashboard.log"
    )
    try:
        for _ in range(100):
            match = re.search(r"dashboard: (http://127\.0\.0\.1:\d+/)", cli.output())
            if match or cli.proc.returncode is not None:
                break
            await asyncio.sleep(0.1)
        assert match, cli.output()
        url = match.group(1)
        assert await get_json(f"{url}api/runs") == {"schema": 1, "runs": []}
        status, page = await get(url)
        assert status == 200 and "<svg" in page and "golem-tasks" in page
        status, text = await get(f"{url}metrics")
        assert status == 200 and "# TYPE golem_tasks_tasks gauge" in text
        status, _ = await get(f"{url}api/runs/nope")
        assert status == 404
    finally:
        await cli.stop()
    assert cli.proc.returncode == 0, cli.output()
    assert "WARNING" not in cli.output()
    # 192.0.2.1 (TEST-NET-1) is not on this machine: the bind fails after the warning.
    result = await asyncio.to_thread(run_cli, "dashboard", "--listen", "192.0.2.1:0", env=env)
    assert "WARNING" in result.stderr and "reachable from other machines" in result.stderr
    assert result.returncode == 2 and "cannot listen on 192.0.2.1:0" in result.stderr
