"""Prometheus metrics of the runs in the database, for monitoring that already scrapes.

Read fresh from the database on every scrape (no state in the dashboard process), then
written by prometheus-client so the text format is the library's, not ours.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from golem_tasks.db import access
from golem_tasks.db.types import Connection

#: Besides every running run, /metrics reports this many of the most recent runs.
RECENT_RUNS = 10

TASK_STATUSES = ("pending", "claimed", "done", "failed")
ACTIVITY_STATUSES = ("new", "deploying", "ready", "stopped", "failed")
DECISIONS = ("accepted", "rejected", "refused")


async def read(conn: Connection, *, recent: int = RECENT_RUNS) -> dict[str, Any]:
    """Everything one scrape reports, in one read-only snapshot."""
    async with conn.transaction():
        await access.execute(conn, "read_only_snapshot")
        ids = [row["id"] for row in await access.all_rows(conn, "metrics_runs", recent=recent)]
        return {
            "runs": await access.all_rows(conn, "metrics_runs_info", ids=ids),
            "tasks": await access.all_rows(conn, "metrics_tasks", ids=ids),
            "activities": await access.all_rows(conn, "metrics_activities", ids=ids),
            "documents": await access.all_rows(conn, "metrics_documents", ids=ids),
            "results": await access.all_rows(conn, "metrics_results", ids=ids),
        }


class _Snapshot(Collector):
    """Turns one :func:`read` into metric families (every label set present, zeros too)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def collect(self) -> Iterator[Metric]:
        runs = self.data["runs"]
        info = GaugeMetricFamily(
            "golem_tasks_run_info", "A run in the database (always 1)", labels=["run_id", "status"]
        )
        workers = GaugeMetricFamily(
            "golem_tasks_run_workers", "Activities the run wants working", labels=["run_id"]
        )
        budget = GaugeMetricFamily(
            "golem_tasks_budget_per_hour_glm", "The run's hourly budget", labels=["run_id"]
        )
        for run in runs:
            info.add_metric([run["id"], run["status"]], 1)
            workers.add_metric([run["id"]], run["workers"])
            budget.add_metric([run["id"]], float(run["budget_per_hour"]))
        yield from (info, workers, budget)

        yield self._by_status(
            "golem_tasks_tasks", "Tasks by status", self.data["tasks"], TASK_STATUSES
        )
        yield self._by_status(
            "golem_tasks_activities",
            "Activities by status",
            self.data["activities"],
            ACTIVITY_STATUSES,
        )

        results = GaugeMetricFamily(
            "golem_tasks_results", "Tasks done with a stored result", labels=["run_id"]
        )
        done = {row["run_id"]: row["n"] for row in self.data["tasks"] if row["status"] == "done"}
        reported = GaugeMetricFamily(
            "golem_tasks_reported_results",
            "The app's own results count, as last recorded",
            labels=["run_id"],
        )
        for run in runs:
            results.add_metric([run["id"]], done.get(run["id"], 0))
        for row in self.data["results"]:
            reported.add_metric([row["run_id"]], row["results_cnt"])
        yield from (results, reported)

        accepted = CounterMetricFamily(
            "golem_tasks_glm_accepted",
            "GLM accepted in debit notes and invoices",
            labels=["run_id"],
        )
        notes = GaugeMetricFamily(
            "golem_tasks_debit_notes", "Debit notes by decision", labels=["run_id", "decision"]
        )
        invoices = GaugeMetricFamily(
            "golem_tasks_invoices", "Invoices by decision", labels=["run_id", "decision"]
        )
        documents: dict[tuple[str, str, str], int] = {}
        spent: dict[str, Decimal] = {}
        for row in self.data["documents"]:
            documents[(row["run_id"], row["kind"], row["status"])] = row["n"]
            if row["status"] == "accepted":
                spent[row["run_id"]] = spent.get(row["run_id"], Decimal(0)) + row["glm"]
        for run in runs:
            accepted.add_metric([run["id"]], float(spent.get(run["id"], Decimal(0))))
            for decision in DECISIONS:
                notes.add_metric(
                    [run["id"], decision], documents.get((run["id"], "debit_note", decision), 0)
                )
                invoices.add_metric(
                    [run["id"], decision], documents.get((run["id"], "invoice", decision), 0)
                )
        yield from (accepted, notes, invoices)

    def _by_status(
        self, name: str, doc: str, rows: list[dict[str, Any]], statuses: tuple[str, ...]
    ) -> GaugeMetricFamily:
        family = GaugeMetricFamily(name, doc, labels=["run_id", "status"])
        found = {(row["run_id"], row["status"]): row["n"] for row in rows}
        for run in self.data["runs"]:
            for status in statuses:
                family.add_metric([run["id"], status], found.get((run["id"], status), 0))
        return family


def exposition(data: dict[str, Any]) -> bytes:
    """Prometheus' text format of one :func:`read`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(data))
    return generate_latest(registry)
