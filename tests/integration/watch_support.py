"""Support for the tests of the views of a run: the dashboard served for real, and every
number a view shows recomputed from the database with the tests' own SQL."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
from aiohttp import web

from golem_tasks.monitor.dashboard import create_app
from tests.integration.pipeline_support import rows, value


@contextlib.asynccontextmanager
async def serve_dashboard(dsn: str, poll_s: float = 2.0) -> AsyncIterator[str]:
    """The dashboard on a free loopback port; yields its base URL (ending in /)."""
    runner = web.AppRunner(create_app(dsn, poll_s=poll_s), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}/"
    finally:
        await runner.cleanup()


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def get_json(url: str) -> Any:
    status, text = await get(url)
    assert status == 200, text
    return json.loads(text)


def frozen_data(html: str) -> Any:
    """The data a report carries in its page."""
    match = re.search(r'<script id="config" type="application/json">(.*?)</script>', html, re.S)
    assert match, "no data in the report"
    return json.loads(match.group(1))["frozen"]


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "Chromium is needed: apt-get install -y chromium (.ci/run installs it)"
    return path


async def expected(dsn: str, run_id: str) -> dict[str, Any]:
    """The facts of a run, computed from the tables with SQL of the tests' own."""
    tasks = {
        r["status"]: r["n"]
        for r in await rows(
            dsn, "SELECT status, count(*) AS n FROM tasks.task WHERE run_id = %s GROUP BY 1", run_id
        )
    }
    activities = {
        r["status"]: r["n"]
        for r in await rows(
            dsn,
            "SELECT status, count(*) AS n FROM tasks.activity WHERE run_id = %s GROUP BY 1",
            run_id,
        )
    }
    docs = {
        (r["kind"], r["status"]): (r["n"], r["glm"])
        for r in await rows(
            dsn,
            "SELECT 'note' AS kind, status, count(*) AS n, sum(increment) AS glm "
            "FROM tasks.debit_note WHERE run_id = %s GROUP BY status "
            "UNION ALL SELECT 'invoice', status, count(*), sum(increment) "
            "FROM tasks.invoice WHERE run_id = %s GROUP BY status",
            run_id,
            run_id,
        )
    }
    spent = sum((glm for (_, status), (_, glm) in docs.items() if status == "accepted"), Decimal(0))
    providers_sql = """
            SELECT ag.provider_id,
                   (SELECT count(*) FROM tasks.task t JOIN tasks.activity a ON a.id = t.activity_id
                    JOIN tasks.agreement g ON g.id = a.agreement_id
                    WHERE g.provider_id = ag.provider_id AND g.run_id = %(r)s
                      AND t.status = 'done') AS done,
                   (SELECT count(*) FROM tasks.task t JOIN tasks.activity a ON a.id = t.activity_id
                    JOIN tasks.agreement g ON g.id = a.agreement_id
                    WHERE g.provider_id = ag.provider_id AND g.run_id = %(r)s
                      AND t.status = 'failed') AS failed,
                   (SELECT count(*) FROM tasks.error e JOIN tasks.activity a ON a.id = e.activity_id
                    JOIN tasks.agreement g ON g.id = a.agreement_id
                    WHERE g.provider_id = ag.provider_id AND g.run_id = %(r)s
                      AND e.kind = 'task') AS failures,
                   (SELECT coalesce(sum(d.increment), 0) FROM tasks.debit_note d
                    JOIN tasks.agreement g ON g.id = d.agreement_id
                    WHERE g.provider_id = ag.provider_id AND g.run_id = %(r)s
                      AND d.status = 'accepted')
                 + (SELECT coalesce(sum(i.increment), 0) FROM tasks.invoice i
                    JOIN tasks.agreement g ON g.id = i.agreement_id
                    WHERE g.provider_id = ag.provider_id AND g.run_id = %(r)s
                      AND i.status = 'accepted') AS glm,
                   (SELECT avg(extract(epoch FROM t.finished_at - t.claimed_at))
                    FROM tasks.task t JOIN tasks.activity a ON a.id = t.activity_id
                    JOIN tasks.agreement g ON g.id = a.agreement_id
                    WHERE g.provider_id = ag.provider_id AND g.run_id = %(r)s
                      AND t.status = 'done') AS mean_task_s,
                   (SELECT count(*) FROM tasks.activity a JOIN tasks.agreement g
                    ON g.id = a.agreement_id WHERE g.provider_id = ag.provider_id
                    AND g.run_id = %(r)s) AS activities
            FROM tasks.agreement ag WHERE ag.run_id = %(r)s AND ag.approved_at IS NOT NULL
            GROUP BY ag.provider_id
            """.replace("%(r)s", "%s")
    providers = {
        r["provider_id"]: r
        for r in await rows(dsn, providers_sql, *([run_id] * providers_sql.count("%s")))
    }
    stop_reasons: dict[str, dict[str, int]] = {}
    for r in await rows(
        dsn,
        "SELECT g.provider_id, a.stop_reason, count(*) AS n FROM tasks.activity a "
        "JOIN tasks.agreement g ON g.id = a.agreement_id WHERE a.run_id = %s "
        "AND a.stop_reason IS NOT NULL GROUP BY 1, 2",
        run_id,
    ):
        stop_reasons.setdefault(r["provider_id"], {})[r["stop_reason"]] = r["n"]
    per_activity = {
        r["id"]: r
        for r in await rows(
            dsn,
            "SELECT a.id, a.status, (SELECT count(*) FROM tasks.task t WHERE t.activity_id = a.id"
            " AND t.status = 'done') AS done, greatest((SELECT coalesce(max(total_amount_due), 0)"
            " FROM tasks.debit_note d WHERE d.activity_id = a.id AND d.status = 'accepted'),"
            " (SELECT coalesce(sum(amount), 0) FROM tasks.invoice i WHERE i.agreement_id ="
            " a.agreement_id AND i.status = 'accepted')) AS cost FROM tasks.activity a"
            " WHERE a.run_id = %s",
            run_id,
        )
    }
    return {
        "tasks": {s: tasks.get(s, 0) for s in ("pending", "claimed", "done", "failed")},
        "total": sum(tasks.values()),
        "activities": {
            s: activities.get(s, 0) for s in ("new", "deploying", "ready", "stopped", "failed")
        },
        "docs": docs,
        "spent": spent,
        "providers": providers,
        "stop_reasons": stop_reasons,
        "per_activity": per_activity,
        "batches": await value(dsn, "SELECT count(*) FROM tasks.batch WHERE run_id = %s", run_id),
        "errors": await value(dsn, "SELECT count(*) FROM tasks.error WHERE run_id = %s", run_id),
        "offers": await value(
            dsn,
            "SELECT count(*) FROM tasks.proposal WHERE run_id = %s AND issuer = 'provider' "
            "AND parent_id IS NULL",
            run_id,
        ),
        "agreements": await value(
            dsn, "SELECT count(*) FROM tasks.agreement WHERE run_id = %s", run_id
        ),
        "run": (await rows(dsn, "SELECT * FROM tasks.run WHERE id = %s", run_id))[0],
    }


def dec(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def check_summary(
    view: dict[str, Any], db: dict[str, Any], before: dict[str, Any] | None = None
) -> None:
    """Every number of the summary equals the database's.

    ``before``: the database read just before the view of a live run, whose offers keep
    coming: the view's count lies between the two reads.
    """
    tasks = db["tasks"]
    assert view["tasks"] == {
        "total": db["total"],
        "pending": tasks["pending"],
        "running": tasks["claimed"],
        "done": tasks["done"],
        "failed": tasks["failed"],
        "more_coming": not db["run"]["feed_done"],
        "progress": (tasks["done"] + tasks["failed"]) / db["total"]
        if db["total"] and db["run"]["feed_done"]
        else None,
    }
    acts = db["activities"]
    assert view["activities"]["ready"] == acts["ready"]
    assert view["activities"]["new"] == acts["new"] + acts["deploying"]
    assert view["activities"]["other"] == acts["stopped"] + acts["failed"]
    assert view["activities"]["stopped"] == acts["stopped"]
    assert view["activities"]["failed"] == acts["failed"]
    assert view["activities"]["total"] == sum(acts.values())
    if before is None:
        assert view["market"]["offers"] == db["offers"]
    else:
        assert before["offers"] <= view["market"]["offers"] <= db["offers"]
    assert view["market"]["agreements"] == db["agreements"]
    assert view["batches"] == db["batches"]
    assert view["results"] == tasks["done"]
    assert view["errors"] == db["errors"]
    money = view["money"]
    assert dec(money["spent"]) == db["spent"]
    assert dec(money["budget_per_hour"]) == db["run"]["budget_per_hour"]
    if tasks["done"]:
        assert dec(money["per_result"]) == db["spent"] / tasks["done"]
    else:
        assert money["per_result"] is None
    docs = db["docs"]
    for kind, name in (("note", "debit_notes"), ("invoice", "invoices")):
        for decision in ("accepted", "rejected", "refused"):
            assert money[name][decision] == docs.get((kind, decision), (0, 0))[0], (name, decision)
    assert view["run"]["status"] == db["run"]["status"]
    assert view["run"]["id"] == db["run"]["id"]


def check_detail(
    view: dict[str, Any], db: dict[str, Any], before: dict[str, Any] | None = None
) -> None:
    check_summary(view, db, before)
    listed = {row["id"]: row for row in view["activity_list"]}
    assert set(listed) == set(db["per_activity"])
    for activity_id, row in listed.items():
        want = db["per_activity"][activity_id]
        assert row["status"] == want["status"]
        assert row["done"] == want["done"]
        assert dec(row["cost"]) == want["cost"]
        assert dec(row["per_result"]) == (want["cost"] / want["done"] if want["done"] else None)


def check_providers(view: dict[str, Any], db: dict[str, Any]) -> None:
    shown = {row["provider_id"]: row for row in view["providers"]}
    assert set(shown) == set(db["providers"])
    for provider_id, row in shown.items():
        want = db["providers"][provider_id]
        assert (row["done"], row["failed"], row["failures"], row["activities"]) == (
            want["done"],
            want["failed"],
            want["failures"],
            want["activities"],
        ), provider_id
        assert dec(row["glm"]) == want["glm"]
        assert dec(row["glm_per_result"]) == (want["glm"] / want["done"] if want["done"] else None)
        if want["mean_task_s"] is None:
            assert row["mean_task_s"] is None
        else:
            assert row["mean_task_s"] == round(float(want["mean_task_s"]), 3)
        assert row["stop_reasons"] == db["stop_reasons"].get(provider_id, {})
    # The providers' costs are the run's spend split between them.
    assert sum((Decimal(row["glm"]) for row in view["providers"]), Decimal(0)) == db["spent"]
