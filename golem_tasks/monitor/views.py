"""Runs as plain JSON-ready data: the stable shape behind ``--json``, the dashboard and reports.

Field names are documented in docs/watching.md and only ever added to. Amounts are decimal
strings (GLM has 18 decimals: a float would round them), times ISO 8601 with their offset.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import PurePath
from typing import Any

from golem_tasks.monitor.snapshot import RunSnapshot

#: Bumped only when a field changes meaning or goes away (never for additions).
SCHEMA_VERSION = 1


def amount(value: Any) -> str | None:
    """A GLM amount as a decimal string, exactly as stored."""
    if value is None:
        return None
    number = Decimal(value)
    if number == 0:
        return "0"
    text = format(number, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def when(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def seconds(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


def run_row(row: dict[str, Any]) -> dict[str, Any]:
    """One line of ``runs``."""
    return {
        "id": row["id"],
        "app": row["app"],
        "app_name": PurePath(row["app"]).name,
        "status": row["status"],
        "stop_reason": row["stop_reason"],
        "created_at": when(row["created_at"]),
        "finished_at": when(row["finished_at"]),
        "workers": row["workers"],
        "budget_per_hour": amount(row["budget_per_hour"]),
        "more_tasks_coming": not row["feed_done"],
        "tasks": int(row["tasks"]),
        "done": int(row["done"]),
        "failed": int(row["failed"]),
    }


def runs(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"schema": SCHEMA_VERSION, "runs": [run_row(row) for row in rows]}


def summary(snap: RunSnapshot) -> dict[str, Any]:
    """The facts of ``summary``: run, tasks, speed, activities, market, money."""
    run, counts, market, spend = snap.run, snap.counts, snap.market, snap.spend
    activities = int(market.get("activities", 0))
    ready = int(market.get("working_activities", 0))
    new = int(market.get("new_activities", 0)) + int(market.get("deploying_activities", 0))
    finished = counts.done + counts.failed
    notes_refused = int(spend.get("notes_refused", 0))
    notes_rejected = int(spend.get("notes_rejected", 0))
    notes_accepted = int(spend.get("debit_notes", 0)) - notes_refused - notes_rejected
    return {
        "schema": SCHEMA_VERSION,
        "now": when(snap.now),
        "run": {
            "id": run["id"],
            "app": run["app"],
            "status": run["status"],
            "stop_reason": run["stop_reason"],
            "created_at": when(run["created_at"]),
            "finished_at": when(run["finished_at"]),
            "workers": run["workers"],
            "subnet": run["subnet"],
            "payment_platform": run["payment_platform"],
            "supervisor": run["supervisor"],
            "supervisor_seen_at": when(run["supervisor_seen_at"]),
        },
        "tasks": {
            "total": counts.total,
            "pending": counts.pending,
            "running": counts.claimed,
            "done": counts.done,
            "failed": counts.failed,
            "more_coming": not run["feed_done"],
            "progress": finished / counts.total if counts.total and run["feed_done"] else None,
        },
        "speed": {
            "elapsed_s": seconds(snap.elapsed_s),
            "tasks_per_min": round(snap.tasks_per_min, 3),
            "eta_s": seconds(snap.eta_s),
            "mean_task_s": seconds(snap.timings.get("avg_task_s")),
        },
        "activities": {
            "ready": ready,
            "new": new,
            "other": activities - ready - new,
            "stopped": int(market.get("stopped_activities", 0)),
            "failed": int(market.get("failed_activities", 0)),
            "total": activities,
            "wanted": run["workers"] if run["status"] == "running" else None,
        },
        "market": {
            "offers": int(market.get("offers", 0)),
            "agreements": int(market.get("agreements", 0)),
            "live_agreements": int(market.get("live_agreements", 0)),
        },
        "batches": int(market.get("batches", 0)),
        "results": counts.done,
        "reported_results": (
            {"count": int(market["reported_results"]), "at": when(market["reported_results_at"])}
            if market.get("reported_results") is not None
            else None
        ),
        "money": {
            "spent": amount(spend.get("accepted", 0)),
            "spent_last_hour": amount(snap.spent_last_hour),
            "budget_per_hour": amount(run["budget_per_hour"]),
            "per_result": amount(snap.cost_per_result),
            "max_price": amount(run["max_price"]),
            "debit_notes": {
                "accepted": notes_accepted,
                "rejected": notes_rejected,
                "refused": notes_refused,
            },
            "invoices": {
                "accepted": int(spend.get("accepted_invoices", 0)),
                "rejected": int(spend.get("invoices_rejected", 0)),
                "refused": int(spend.get("invoices_refused", 0)),
            },
            "allocations": int(spend.get("allocations", 0)),
        },
        "errors": int(market.get("errors", 0)),
    }


def activity_row(row: dict[str, Any]) -> dict[str, Any]:
    done = int(row["done"])
    cost = Decimal(row["cost"])
    return {
        "id": row["id"],
        "provider_id": row["provider_id"],
        "provider_name": row["provider_name"],
        "status": row["status"],
        "done": done,
        "running": int(row["running"]),
        "cost": amount(cost),
        "per_result": amount(cost / done) if done else None,
        "stop_request": row["stop_request"],
        "stop_reason": row["stop_reason"],
        "created_at": when(row["created_at"]),
        "stopped_at": when(row["stopped_at"]),
    }


def error_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "at": when(row["at"]),
        "source": row["source"],
        "kind": row["kind"],
        "message": row["message"],
        "agreement_id": row["agreement_id"],
        "activity_id": row["activity_id"],
        "task_id": row["task_id"],
    }


def provider_row(row: dict[str, Any]) -> dict[str, Any]:
    done = int(row["done"])
    glm = Decimal(row["glm"])
    return {
        "provider_id": row["provider_id"],
        "provider_name": row["provider_name"],
        "agreements": int(row["agreements"]),
        "activities": int(row["activities"]),
        "working": int(row["working"]),
        "done": done,
        "failed": int(row["failed"]),
        "failures": int(row["failures"]),
        "glm": amount(glm),
        "glm_per_result": amount(glm / done) if done else None,
        "mean_task_s": seconds(row["mean_task_s"]),
        "stop_reasons": dict(row["stop_reasons"] or {}),
        "avoid_reason": row["avoid_reason"],
    }


def timeline_point(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "at": when(row["at"]),
        "results": int(row["results"]),
        "working": int(row["working"]),
        "glm": amount(row["glm"]),
    }


def detail(snap: RunSnapshot) -> dict[str, Any]:
    """The facts of ``show``: the summary, every listed activity, recent errors."""
    view = summary(snap)
    view["activity_list"] = [activity_row(row) for row in snap.activities]
    view["recent_errors"] = [error_row(row) for row in snap.errors]
    return view


def dashboard(snap: RunSnapshot) -> dict[str, Any]:
    """What the dashboard and reports show of a run: ``show`` plus providers and history."""
    view = detail(snap)
    view["providers"] = [provider_row(row) for row in snap.providers]
    view["timeline"] = [timeline_point(row) for row in snap.timeline]
    return view
