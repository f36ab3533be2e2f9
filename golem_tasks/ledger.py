"""The hourly budget rule applied to debit notes and invoices, with every decision stored.

A debit note carries its activity's cumulative total; it adds to the spend only its
increase over the activity's last accepted note, and nothing once its agreement's invoice
was accepted (the invoice is the final total). An invoice adds what the agreement's
accepted notes had not covered. A document is accepted only if the spend accepted within
the last hour plus what it adds stays within the hourly budget; since the supervisor
keeps activities only while what they can charge fits (see ``budget``), one that does not
fit was overcharged, and is rejected for good.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any

import psycopg

from golem_tasks.db import access

WINDOW = timedelta(hours=1)


class Verdict(str, Enum):
    """What was decided about a document (stored as the row's status)."""

    #: It fits the hourly budget: accepted, to be paid.
    ACCEPTED = "accepted"
    #: It does not fit the budget although the budget was kept for every activity ordered:
    #: its provider charged more than it may. Rejected for good (yagna's reject call).
    OVER_BUDGET = "rejected"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    increment: Decimal
    reason: str | None
    allocation_id: str | None
    #: ``True`` when this document had been decided before (a redelivered event).
    known: bool = False

    @property
    def accepted(self) -> bool:
        return self.verdict is Verdict.ACCEPTED


def budget_reason(spent: Decimal, increment: Decimal, budget: Decimal) -> str:
    return (
        f"charged more than the budget kept for it: {spent.normalize():f} accepted in the "
        f"last hour plus {increment.normalize():f} would pass the hourly budget of "
        f"{budget.normalize():f}"
    )


async def _spent(conn: psycopg.AsyncConnection, run_id: str, now: datetime) -> Decimal:
    row = await access.one(conn, "spent_since", run_id=run_id, since=now - WINDOW)
    return Decimal(row["spent"])


async def _allocation(conn: psycopg.AsyncConnection, run_id: str, now: datetime) -> str | None:
    row = await access.one(conn, "current_allocation", run_id=run_id, now=now)
    return row["id"] if row else None


def _known(row: dict) -> Decision:
    return Decision(
        Verdict(row["status"]),
        Decimal(row["increment"]),
        row["reason"],
        row["allocation_id"],
        known=True,
    )


class NoAllocation(Exception):
    """Nothing can be accepted before the current hour's allocation exists (decide later)."""


@dataclass(frozen=True)
class _Kind:
    """The queries that differ between debit notes and invoices."""

    get: str
    covered: str  # what this document's earlier accepted documents already cover
    insert: str


DEBIT_NOTE = _Kind("get_debit_note", "last_accepted_note_total", "insert_debit_note")
INVOICE = _Kind("get_invoice", "agreement_accepted_notes_total", "insert_invoice")


async def _decide(
    conn: psycopg.AsyncConnection,
    kind: _Kind,
    *,
    run_id: str,
    doc_id: str,
    amount: Decimal,
    covered_by: dict[str, Any],
    facts: dict[str, Any],
    budget: Decimal,
    now: datetime,
) -> Decision:
    """Decide and store one document in one transaction.

    A decision stays (a redelivery gets the stored one). Rows ``refused`` by an earlier
    version, which decided such documents again later, are decided again.
    """
    async with conn.transaction():
        await access.execute(conn, "spend_lock", run_id=run_id)
        row = await access.one(conn, kind.get, id=doc_id)
        if row is not None and row["status"] in (Verdict.ACCEPTED.value, Verdict.OVER_BUDGET.value):
            return _known(row)
        covered = await access.one(conn, kind.covered, **covered_by)
        if covered["invoiced"]:
            increment = Decimal(0)  # the agreement's invoice already settled everything
        else:
            increment = max(Decimal(0), amount - Decimal(covered["total"]))
        spent = await _spent(conn, run_id, now)
        allocation_id = await _allocation(conn, run_id, now)
        accepted = spent + increment <= budget
        verdict = Verdict.ACCEPTED if accepted else Verdict.OVER_BUDGET
        reason = None if accepted else budget_reason(spent, increment, budget)
        if accepted and allocation_id is None and increment > 0:
            raise NoAllocation(f"no allocation for {now.isoformat()} yet")
        await access.execute(
            conn,
            kind.insert,
            id=doc_id,
            run_id=run_id,
            increment=increment,
            status=verdict.value,
            reason=reason,
            allocation_id=allocation_id if accepted else None,
            now=now,
            **facts,
        )
    return Decision(verdict, increment, reason, allocation_id)


async def decide_debit_note(
    conn: psycopg.AsyncConnection,
    *,
    run_id: str,
    note_id: str,
    agreement_id: str,
    activity_id: str,
    total_amount_due: Decimal,
    budget: Decimal,
    now: datetime,
    issued_at: datetime | None = None,
) -> Decision:
    """A debit note adds its increase over the activity's last accepted note."""
    return await _decide(
        conn,
        DEBIT_NOTE,
        run_id=run_id,
        doc_id=note_id,
        amount=total_amount_due,
        covered_by={"activity_id": activity_id, "agreement_id": agreement_id},
        facts={
            "agreement_id": agreement_id,
            "activity_id": activity_id,
            "total_amount_due": total_amount_due,
            "issued_at": issued_at,
        },
        budget=budget,
        now=now,
    )


async def decide_invoice(
    conn: psycopg.AsyncConnection,
    *,
    run_id: str,
    invoice_id: str,
    agreement_id: str,
    amount: Decimal,
    budget: Decimal,
    now: datetime,
) -> Decision:
    """An invoice adds what the agreement's accepted debit notes had not covered."""
    return await _decide(
        conn,
        INVOICE,
        run_id=run_id,
        doc_id=invoice_id,
        amount=amount,
        covered_by={"agreement_id": agreement_id},
        facts={"agreement_id": agreement_id, "amount": amount},
        budget=budget,
        now=now,
    )


async def spent_last_hour(conn: psycopg.AsyncConnection, run_id: str, now: datetime) -> Decimal:
    return await _spent(conn, run_id, now)


@dataclass(frozen=True)
class ActivityCost:
    cost: Decimal
    results: int
    age_s: float

    @property
    def per_result(self) -> Decimal | None:
        """Average cost of one result; ``None`` before the first result."""
        return self.cost / self.results if self.results else None


async def activity_cost(conn: psycopg.AsyncConnection, activity_id: str) -> ActivityCost:
    row = await access.one(conn, "activity_cost", activity_id=activity_id)
    return ActivityCost(Decimal(row["cost"]), int(row["results"]), float(row["age_s"] or 0))
