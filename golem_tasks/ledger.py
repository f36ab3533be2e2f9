"""The hourly budget rule applied to debit notes and invoices, with every decision stored.

A debit note carries its activity's cumulative total; it adds to the spend only its
increase over the activity's last accepted note. An invoice adds what the agreement's
accepted notes had not covered. A document is accepted only if the spend accepted within
the last hour plus what it adds stays within the hourly budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import psycopg

from golem_tasks.db.queries import queries

WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class Decision:
    accepted: bool
    increment: Decimal
    reason: str | None
    allocation_id: str | None
    #: ``True`` when this document had been decided before (a redelivered event).
    known: bool = False


def budget_reason(spent: Decimal, increment: Decimal, budget: Decimal) -> str:
    return (
        f"budget exceeded: {spent.normalize()} accepted in the last hour plus "
        f"{increment.normalize()} would pass the hourly budget of {budget.normalize()}"
    )


async def _spent(conn: psycopg.AsyncConnection, run_id: str, now: datetime) -> Decimal:
    row = await (
        await conn.execute(queries.spent_since, {"run_id": run_id, "since": now - WINDOW})
    ).fetchone()
    return Decimal(row["spent"])


async def _allocation(conn: psycopg.AsyncConnection, run_id: str, now: datetime) -> str | None:
    row = await (
        await conn.execute(queries.current_allocation, {"run_id": run_id, "now": now})
    ).fetchone()
    return row["id"] if row else None


def _known(row: dict) -> Decision:
    return Decision(
        row["status"] == "accepted",
        Decimal(row["increment"]),
        row["reason"],
        row["allocation_id"],
        known=True,
    )


def _judge(
    spent: Decimal, increment: Decimal, budget: Decimal, allocation_id: str | None
) -> tuple[bool, str | None]:
    if spent + increment > budget:
        return False, budget_reason(spent, increment, budget)
    if allocation_id is None and increment > 0:
        return False, "no allocation for the current hour"
    return True, None


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
) -> Decision:
    """Decide and store a debit note in one transaction (idempotent by note id)."""
    async with conn.transaction():
        await conn.execute(queries.spend_lock, {"run_id": run_id})
        row = await (await conn.execute(queries.get_debit_note, {"id": note_id})).fetchone()
        if row is not None:
            return _known(row)
        last = await (
            await conn.execute(queries.last_accepted_note_total, {"activity_id": activity_id})
        ).fetchone()
        increment = max(Decimal(0), total_amount_due - Decimal(last["total"]))
        spent = await _spent(conn, run_id, now)
        allocation_id = await _allocation(conn, run_id, now)
        accepted, reason = _judge(spent, increment, budget, allocation_id)
        await conn.execute(
            queries.insert_debit_note,
            {
                "id": note_id,
                "run_id": run_id,
                "agreement_id": agreement_id,
                "activity_id": activity_id,
                "total_amount_due": total_amount_due,
                "increment": increment,
                "status": "accepted" if accepted else "refused",
                "reason": reason,
                "allocation_id": allocation_id if accepted else None,
                "now": now,
            },
        )
    return Decision(accepted, increment, reason, allocation_id)


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
    """Decide and store an invoice in one transaction (idempotent by invoice id)."""
    async with conn.transaction():
        await conn.execute(queries.spend_lock, {"run_id": run_id})
        row = await (await conn.execute(queries.get_invoice, {"id": invoice_id})).fetchone()
        if row is not None:
            return _known(row)
        covered = await (
            await conn.execute(
                queries.agreement_accepted_notes_total, {"agreement_id": agreement_id}
            )
        ).fetchone()
        increment = max(Decimal(0), amount - Decimal(covered["total"]))
        spent = await _spent(conn, run_id, now)
        allocation_id = await _allocation(conn, run_id, now)
        accepted, reason = _judge(spent, increment, budget, allocation_id)
        await conn.execute(
            queries.insert_invoice,
            {
                "id": invoice_id,
                "run_id": run_id,
                "agreement_id": agreement_id,
                "amount": amount,
                "increment": increment,
                "status": "accepted" if accepted else "refused",
                "reason": reason,
                "allocation_id": allocation_id if accepted else None,
                "now": now,
            },
        )
    return Decision(accepted, increment, reason, allocation_id)


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
    row = await (await conn.execute(queries.activity_cost, {"activity_id": activity_id})).fetchone()
    return ActivityCost(Decimal(row["cost"]), int(row["results"]), float(row["age_s"] or 0))
