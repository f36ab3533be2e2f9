"""Turning a run snapshot into terminal output (rich), at a glance or in detail."""

from __future__ import annotations

from decimal import Decimal
from pathlib import PurePath
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from golem_tasks.monitor.snapshot import RunSnapshot

#: A running run's supervisor silent for this long has probably died.
SUPERVISOR_SILENT_S = 30.0

STATUS_STYLE = {
    "running": "bold green",
    "stopping": "bold yellow",
    "finished": "bold green",
    "failed": "bold red",
    "stopped": "bold yellow",
    "ready": "green",
    "deploying": "cyan",
    "new": "cyan",
}


def money(value: Any) -> str:
    if value is None:
        return "-"
    number = Decimal(value)
    return f"{number:.6f}".rstrip("0").rstrip(".") if number else "0"


def duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def summary(snap: RunSnapshot) -> RenderableType:
    """The one-glance view: status, progress, money, market."""
    run, counts = snap.run, snap.counts
    status = Text(run["status"], style=STATUS_STYLE.get(run["status"], ""))
    head = Text.assemble(
        ("run ", "dim"),
        (run["id"], "bold"),
        "  ",
        status,
        ("  " + (run["stop_reason"] or ""), "dim"),
    )
    total = counts.total if snap.run["feed_done"] else max(counts.total, 1)
    bar = ProgressBar(total=max(total, 1), completed=counts.done + counts.failed, width=40)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim")
    grid.add_column()
    more = "" if run["feed_done"] else " (more coming)"
    if counts.follow_ups:
        more += f" ({counts.follow_ups} follow-ups)"
    grid.add_row(
        "tasks",
        f"{counts.done} done, {counts.failed} failed, {counts.claimed} running, "
        f"{counts.pending} pending of {counts.total}{more}",
    )
    grid.add_row("progress", bar)
    grid.add_row(
        "speed",
        f"{snap.tasks_per_min:.1f} tasks/min over {duration(snap.elapsed_s)}",
    )
    market = snap.market
    grid.add_row(
        "providers",
        f"{market.get('working_activities', 0)} activities working"
        + (f" (want {run['workers']})" if run["status"] == "running" else "")
        + ", "
        f"{market.get('activities', 0)} in all, {market.get('failed_activities', 0)} failed; "
        f"{market.get('agreements', 0)} agreements from {market.get('offers', 0)} offers",
    )
    spend = snap.spend
    per_result = snap.cost_per_result
    grid.add_row(
        "spent",
        f"{money(spend.get('accepted'))} accepted "
        f"({money(snap.spent_last_hour)} in the last hour, budget "
        f"{money(run['budget_per_hour'])}/h); "
        f"{money(per_result)} per result"
        + (f", max {money(run['max_price'])}" if run["max_price"] is not None else ""),
    )
    grid.add_row(
        "payments",
        f"{spend.get('debit_notes', 0)} debit notes ({spend.get('refused_notes', 0)} refused), "
        f"{spend.get('accepted_invoices', 0)}/{spend.get('invoices', 0)} invoices accepted, "
        f"{spend.get('allocations', 0)} allocations",
    )
    grid.add_row("errors", str(market.get("errors", 0)))
    grid.add_row("supervisor", supervisor_line(snap))
    return Panel(Group(head, grid), title="golem-tasks", expand=False)


def runs(rows: list[dict[str, Any]]) -> RenderableType:
    table = Table(title="runs", expand=False)
    for column in ("run", "status", "done", "started"):
        table.add_column(column, no_wrap=True)
    table.add_column("app", max_width=14, no_wrap=True, overflow="ellipsis")
    table.add_column("reason", overflow="fold")
    for row in rows:
        table.add_row(
            row["id"],
            Text(row["status"], style=STATUS_STYLE.get(row["status"], "")),
            f"{row['done']}/{row['tasks']}",
            row["created_at"].strftime("%m-%d %H:%M"),
            PurePath(row["app"]).name,
            row["stop_reason"] or "",
        )
    return table


def supervisor_line(snap: RunSnapshot) -> Text:
    """Who supervises the run and whether it still does (it checks in every second)."""
    run = snap.run
    seen = run["supervisor_seen_at"]
    if run["supervisor"] is None or seen is None:
        return Text("none yet", style="dim")
    ago = (snap.now - seen).total_seconds()
    text = Text(f"{run['supervisor']}, seen {duration(ago)} ago")
    if run["status"] in ("running", "stopping") and ago > SUPERVISOR_SILENT_S:
        text.append(
            f" — not running? start it again with --run-id {run['id']} to resume",
            style="bold red",
        )
    return text


def activities(snap: RunSnapshot) -> RenderableType:
    table = Table(title="activities", expand=False)
    for column in ("provider", "activity", "status", "done", "cost", "per result", "note"):
        table.add_column(column, overflow="fold")
    for row in snap.activities:
        done = int(row["done"])
        cost = Decimal(row["cost"])
        table.add_row(
            row["provider_name"] or row["provider_id"][:12],
            row["id"][:12],
            Text(row["status"], style=STATUS_STYLE.get(row["status"], "dim")),
            str(done) + (" +1" if row["running"] else ""),
            money(cost),
            money(cost / done) if done else "-",
            row["stop_reason"] or row["stop_request"] or "",
        )
    return table


def errors(snap: RunSnapshot) -> RenderableType:
    table = Table(title="recent errors", expand=False)
    for column in ("at", "source", "kind", "message"):
        table.add_column(column, overflow="fold")
    for row in snap.errors:
        table.add_row(
            row["at"].strftime("%H:%M:%S"), row["source"], row["kind"], row["message"][:160]
        )
    return table


def detail(snap: RunSnapshot) -> RenderableType:
    parts: list[RenderableType] = [summary(snap)]
    if snap.activities:
        parts.append(activities(snap))
    if snap.errors:
        parts.append(errors(snap))
    return Group(*parts)
