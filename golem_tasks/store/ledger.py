"""The ledger: the hourly budget rule applied to debit notes and invoices, every decision
stored, and the reads the budget keeps ahead with (spend, what activities may charge).

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

from golem_tasks.db import access
from golem_tasks.db.types import Connection, Row
from golem_tasks.store.records import ActivityStatus, AgreementStatus

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


async def _spent(conn: Connection, run_id: str, now: datetime) -> Decimal:
    row = await access.the_row(conn, "spent_since", run_id=run_id, since=now - WINDOW)
    return Decimal(row["spent"])


async def _allocation(conn: Connection, run_id: str, now: datetime) -> str | None:
    row = await access.one(conn, "current_allocation", run_id=run_id, now=now)
    return row["id"] if row else None


async def spend_lock(conn: Connection, run_id: str) -> None:
    """The run's spend lock, until the transaction ends: decisions, and reads that must
    see the spend and the exposure it shortens together, take it."""
    await access.execute(conn, "spend_lock", run_id=run_id)


def _known(row: Row) -> Decision:
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
class Kind:
    """What differs between debit notes and invoices here: their tables' queries, and what
    a document's earlier accepted documents already cover."""

    name: str
    get: str
    #: What this document's earlier accepted documents cover (``total``, ``invoiced``).
    covered: str
    insert: str
    #: Records the allocation that pays it when that is not the one it was decided under.
    set_paid_from: str


#: A debit note is cumulative per activity: it adds its increase over the activity's last
#: accepted note.
DEBIT_NOTE = Kind(
    "debit note",
    get="get_debit_note",
    covered="last_accepted_note_total",
    insert="insert_debit_note",
    set_paid_from="set_debit_note_paid_from",
)
#: An invoice is its agreement's final total: it adds what the accepted notes had not covered.
INVOICE = Kind(
    "invoice",
    get="get_invoice",
    covered="agreement_accepted_notes_total",
    insert="insert_invoice",
    set_paid_from="set_invoice_paid_from",
)


@dataclass(frozen=True)
class Document:
    """One debit note or invoice, as the ledger decides it."""

    kind: Kind
    id: str
    agreement_id: str
    #: A debit note's total amount due, an invoice's amount.
    amount: Decimal
    #: A debit note's activity (an invoice covers its whole agreement).
    activity_id: str | None = None
    #: When the provider issued it (stored for debit notes).
    issued_at: datetime | None = None


async def decide(
    conn: Connection, document: Document, *, run_id: str, budget: Decimal, now: datetime
) -> Decision:
    """Decide and store one document in one transaction.

    A decision stays (a redelivery gets the stored one). Rows ``refused`` by an earlier
    version, which decided such documents again later, are decided again.
    """
    kind = document.kind
    facts = {
        "id": document.id,
        "run_id": run_id,
        "agreement_id": document.agreement_id,
        "activity_id": document.activity_id,
        "amount": document.amount,
        "issued_at": document.issued_at,
    }
    async with conn.transaction():
        await spend_lock(conn, run_id)
        row = await access.one(conn, kind.get, id=document.id)
        if row is not None and row["status"] in (Verdict.ACCEPTED.value, Verdict.OVER_BUDGET.value):
            return _known(row)
        covered = await access.the_row(conn, kind.covered, **facts)
        if covered["invoiced"]:
            increment = Decimal(0)  # the agreement's invoice already settled everything
        else:
            increment = max(Decimal(0), document.amount - Decimal(covered["total"]))
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
            increment=increment,
            status=verdict.value,
            reason=reason,
            allocation_id=allocation_id if accepted else None,
            now=now,
            **facts,
        )
    return Decision(verdict, increment, reason, allocation_id)


async def set_paid_from(conn: Connection, document: Document, allocation_id: str) -> None:
    """The allocation that pays a document decided under one that is gone."""
    await access.execute(
        conn, document.kind.set_paid_from, id=document.id, allocation_id=allocation_id
    )


async def spent_last_hour(conn: Connection, run_id: str, now: datetime) -> Decimal:
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


async def activity_cost(conn: Connection, activity_id: str) -> ActivityCost:
    row = await access.the_row(conn, "activity_cost", activity_id=activity_id)
    return ActivityCost(Decimal(row["cost"]), int(row["results"]), float(row["age_s"] or 0))


@dataclass(frozen=True)
class ChargingAgreement:
    """An agreement whose charges are not final yet (no decided invoice)."""

    id: str
    status: AgreementStatus
    provider_id: str
    #: Its offer's properties: the prices and debit-note interval agreed.
    properties: dict[str, Any]


@dataclass(frozen=True)
class ChargingActivity:
    """An activity of such an agreement, with its last accepted debit note."""

    id: str
    agreement_id: str
    status: ActivityStatus
    created_at: datetime
    stopped_at: datetime | None
    #: Its last accepted note's cumulative total, and when that note's usage ends.
    note_total: Decimal | None
    note_at: datetime | None


async def charging_agreements(
    conn: Connection, run_id: str, since: datetime
) -> list[ChargingAgreement]:
    """Agreements whose charges are not final yet; ended ones count until an hour after
    their end (``since``)."""
    rows = await access.all_rows(conn, "budget_agreements", run_id=run_id, since=since)
    return [
        ChargingAgreement(
            row["id"], AgreementStatus(row["status"]), row["provider_id"], row["properties"] or {}
        )
        for row in rows
    ]


async def charging_activities(conn: Connection, agreement_ids: list[str]) -> list[ChargingActivity]:
    rows = await access.all_rows(conn, "budget_activities", agreement_ids=agreement_ids)
    return [
        ChargingActivity(
            row["id"],
            row["agreement_id"],
            ActivityStatus(row["status"]),
            row["created_at"],
            row["stopped_at"],
            row["note_total"],
            row["note_at"],
        )
        for row in rows
    ]


# -- allocations ------------------------------------------------------------------------


@dataclass(frozen=True)
class Allocation:
    """One hour's allocation of the run, as stored."""

    id: str
    amount: Decimal
    period_start: datetime
    released_at: datetime | None

    @classmethod
    def from_row(cls, row: Row) -> Allocation:
        return cls(row["id"], Decimal(row["amount"]), row["period_start"], row["released_at"])


async def insert_allocation(
    conn: Connection,
    *,
    id: str,
    run_id: str,
    amount: Decimal,
    platform: str,
    address: str | None,
    period_start: datetime,
) -> None:
    await access.execute(
        conn,
        "insert_allocation",
        id=id,
        run_id=run_id,
        amount=amount,
        platform=platform,
        address=address,
        period_start=period_start,
    )


async def current_allocation(conn: Connection, run_id: str, now: datetime) -> Allocation | None:
    """The unreleased allocation of the hour that contains ``now``, if it was made."""
    row = await access.one(conn, "current_allocation", run_id=run_id, now=now)
    return Allocation.from_row(row) if row is not None else None


async def first_allocation_start(conn: Connection, run_id: str) -> datetime | None:
    """Run-hours are counted from the first allocation's hour."""
    row = await access.the_row(conn, "first_allocation_start", run_id=run_id)
    start: datetime | None = row["start"]
    return start


async def unreleased_allocations(conn: Connection, run_id: str) -> list[Allocation]:
    rows = await access.all_rows(conn, "unreleased_allocations", run_id=run_id)
    return [Allocation.from_row(row) for row in rows]


async def get_allocation(conn: Connection, allocation_id: str) -> Allocation | None:
    row = await access.one(conn, "get_allocation", id=allocation_id)
    return Allocation.from_row(row) if row is not None else None


async def allocation_released(conn: Connection, allocation_id: str) -> None:
    await access.execute(conn, "mark_allocation_released", id=allocation_id)
