"""The hourly budget rule against real PostgreSQL: increments, the sliding hour, races."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from golem_tasks.db.connect import connect, connection
from golem_tasks.store import ledger
from tests.helpers import make_run

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)


async def add_allocation(dsn: str, period_start: datetime, alloc_id: str = "alloc-1") -> None:
    async with connection(dsn, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO tasks.allocation (id, run_id, amount, platform, period_start)"
            " VALUES (%s, 'r1', 1, 'erc20-holesky-tglm', %s)",
            (alloc_id, period_start),
        )


async def note(conn, note_id: str, activity: str, total: str, now: datetime, budget: str = "1"):
    agreement = {"act0": "ag0", "act1": "ag1"}[activity]
    document = ledger.Document(
        ledger.DEBIT_NOTE, note_id, agreement, Decimal(total), activity_id=activity
    )
    return await ledger.decide(conn, document, run_id="r1", budget=Decimal(budget), now=now)


async def invoice(conn, invoice_id: str, agreement: str, amount: str, now: datetime):
    document = ledger.Document(ledger.INVOICE, invoice_id, agreement, Decimal(amount))
    return await ledger.decide(conn, document, run_id="r1", budget=Decimal(1), now=now)


async def test_notes_add_only_their_increase(installed_dsn: str) -> None:
    await make_run(installed_dsn)
    await add_allocation(installed_dsn, T0)
    async with connection(installed_dsn, autocommit=True) as conn:
        first = await note(conn, "dn1", "act0", "0.2", T0 + timedelta(minutes=1))
        second = await note(conn, "dn2", "act0", "0.5", T0 + timedelta(minutes=2))
        other = await note(conn, "dn3", "act1", "0.3", T0 + timedelta(minutes=3))
        assert (first.accepted, first.increment) == (True, Decimal("0.2"))
        assert (second.accepted, second.increment) == (True, Decimal("0.3"))
        assert (other.accepted, other.increment) == (True, Decimal("0.3"))
        assert await ledger.spent_last_hour(conn, "r1", T0 + timedelta(minutes=4)) == Decimal("0.8")
        # Redelivered note: the stored decision, nothing added twice.
        again = await note(conn, "dn2", "act0", "0.5", T0 + timedelta(minutes=5))
        assert again.known and again.accepted
        assert await ledger.spent_last_hour(conn, "r1", T0 + timedelta(minutes=5)) == Decimal("0.8")


async def test_note_that_would_pass_the_budget_is_rejected_for_good(installed_dsn: str) -> None:
    """The budget is kept ahead for every activity ordered: a note that does not fit was
    overcharged. Its rejection is final (yagna is told; the provider is not asked again)."""
    await make_run(installed_dsn)
    await add_allocation(installed_dsn, T0)
    async with connection(installed_dsn, autocommit=True) as conn:
        assert (await note(conn, "dn1", "act0", "0.9", T0 + timedelta(minutes=1))).accepted
        rejected = await note(conn, "dn2", "act1", "0.2", T0 + timedelta(minutes=2))
        assert rejected.verdict is ledger.Verdict.OVER_BUDGET and not rejected.accepted
        assert "charged more than the budget kept for it" in rejected.reason
        row = await (await conn.execute("SELECT * FROM tasks.debit_note WHERE id='dn2'")).fetchone()
        assert row is not None
        assert row["status"] == "rejected" and row["increment"] == Decimal("0.2")
        assert row["allocation_id"] is None
        again = await note(conn, "dn2", "act1", "0.2", T0 + timedelta(minutes=3))
        assert again.verdict is ledger.Verdict.OVER_BUDGET and again.known  # said once
        # Even once the hour has room, the decision stays: nothing is accepted twice over.
        await add_allocation(installed_dsn, T0 + timedelta(hours=1), "alloc-2")
        later = await note(conn, "dn2", "act1", "0.2", T0 + timedelta(minutes=62))
        assert later.known and not later.accepted
        assert await ledger.spent_last_hour(conn, "r1", T0 + timedelta(minutes=62)) == 0


async def test_a_note_refused_by_an_earlier_version_is_decided_again(installed_dsn: str) -> None:
    await make_run(installed_dsn)
    await add_allocation(installed_dsn, T0)
    async with connection(installed_dsn, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO tasks.debit_note (id, run_id, agreement_id, activity_id, "
            "total_amount_due, increment, status, reason) "
            "VALUES ('dn1', 'r1', 'ag0', 'act0', 0.2, 0.2, 'refused', 'budget exceeded')"
        )
        decision = await note(conn, "dn1", "act0", "0.2", T0 + timedelta(minutes=1))
        assert decision.accepted and decision.allocation_id == "alloc-1"


async def test_invoice_adds_what_notes_did_not_cover(installed_dsn: str) -> None:
    await make_run(installed_dsn)
    await add_allocation(installed_dsn, T0)
    async with connection(installed_dsn, autocommit=True) as conn:
        await note(conn, "dn1", "act0", "0.4", T0 + timedelta(minutes=1))
        decision = await invoice(conn, "inv1", "ag0", "0.45", T0 + timedelta(minutes=2))
        assert decision.accepted and decision.increment == Decimal("0.05")
        assert await ledger.spent_last_hour(conn, "r1", T0 + timedelta(minutes=3)) == Decimal(
            "0.45"
        )


async def test_without_an_allocation_nothing_is_decided(installed_dsn: str) -> None:
    await make_run(installed_dsn)
    async with connection(installed_dsn, autocommit=True) as conn:
        with pytest.raises(ledger.NoAllocation):
            await note(conn, "dn1", "act0", "0.1", T0)
        assert await (await conn.execute("SELECT * FROM tasks.debit_note")).fetchall() == []
    # Once the hour's allocation exists, the same note is accepted.
    await add_allocation(installed_dsn, T0)
    async with connection(installed_dsn, autocommit=True) as conn:
        assert (await note(conn, "dn1", "act0", "0.1", T0)).accepted


async def test_racing_notes_never_pass_the_budget_together(installed_dsn: str) -> None:
    await make_run(installed_dsn)
    await add_allocation(installed_dsn, T0)

    async def one(note_id: str, activity: str) -> ledger.Decision:
        conn = await connect(installed_dsn, autocommit=True)
        async with conn:
            return await note(conn, note_id, activity, "0.6", T0 + timedelta(minutes=1))

    decisions = await asyncio.gather(one("dnA", "act0"), one("dnB", "act1"))
    assert sorted(d.accepted for d in decisions) == [False, True]


async def test_note_decided_after_its_invoice_adds_nothing(installed_dsn: str) -> None:
    """The invoice is the agreement's final total: a late note (retried, reconciled) must not
    be counted on top of it. Note 0.2, invoice 0.5, late note 0.4: 0.5 was owed, not 0.7."""
    await make_run(installed_dsn)
    await add_allocation(installed_dsn, T0)
    async with connection(installed_dsn, autocommit=True) as conn:
        assert (await note(conn, "dn1", "act0", "0.2", T0 + timedelta(minutes=1))).accepted
        final = await invoice(conn, "inv1", "ag0", "0.5", T0 + timedelta(minutes=2))
        assert final.accepted and final.increment == Decimal("0.3")
        late = await note(conn, "dn2", "act0", "0.4", T0 + timedelta(minutes=3))
        assert late.accepted and late.increment == Decimal(0)
        assert await ledger.spent_last_hour(conn, "r1", T0 + timedelta(minutes=4)) == Decimal("0.5")
