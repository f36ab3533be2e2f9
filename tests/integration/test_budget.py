"""The prospective budget against real PostgreSQL: what every activity may still charge,
from its agreement's terms, its last accepted note and its state."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from golem_tasks import budget
from golem_tasks.db.connect import connection
from golem_tasks.store import ledger

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
#: 0.001 per second of duration, 0.0001 per cpu-second on 4 threads, 0.5 per start.
PROPERTIES = {
    "golem.com.pricing.model": "linear",
    "golem.com.pricing.model.linear.coeffs": [0.0001, 0.001, 0.5],
    "golem.com.usage.vector": ["golem.usage.cpu_sec", "golem.usage.duration_sec"],
    "golem.inf.cpu.threads": 4,
    "golem.com.scheme.payu.debit-note.interval-sec?": 10,
}
RATE = Decimal("0.0014")  # 0.001 + 0.0001 * 4


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def agreement(conn, agreement_id: str, status: str = "approved", ended: float | None = None):
    await conn.execute(
        "INSERT INTO tasks.proposal (id, run_id, demand_id, issuer, provider_id, properties) "
        "VALUES (%s, 'r1', 'd1', 'provider', %s, %s)",
        (f"p-{agreement_id}", f"prov-{agreement_id}", json.dumps(PROPERTIES)),
    )
    await conn.execute(
        "INSERT INTO tasks.agreement (id, run_id, proposal_id, provider_id, status, approved_at, "
        "terminated_at) VALUES (%s, 'r1', %s, %s, %s, %s, %s)",
        (
            agreement_id,
            f"p-{agreement_id}",
            f"prov-{agreement_id}",
            status,
            T0,
            at(ended) if ended is not None else None,
        ),
    )


async def activity(conn, activity_id: str, agreement_id: str, stopped: float | None = None):
    await conn.execute(
        "INSERT INTO tasks.activity (id, run_id, agreement_id, status, created_at, stopped_at) "
        "VALUES (%s, 'r1', %s, %s, %s, %s)",
        (
            activity_id,
            agreement_id,
            "stopped" if stopped is not None else "ready",
            T0,
            at(stopped) if stopped is not None else None,
        ),
    )


@pytest.fixture
async def run(installed_dsn: str) -> str:
    async with connection(installed_dsn, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO tasks.run (id, app, workers, budget_per_hour, subnet, payment_platform)"
            " VALUES ('r1', 'app', 1, 1, 'public', 'erc20-holesky-tglm')"
        )
        await conn.execute(
            "INSERT INTO tasks.demand (id, run_id, properties, constraints, expires_at) "
            "VALUES ('d1', 'r1', '{}', '', %s)",
            (at(3600),),
        )
    return installed_dsn


async def test_each_activity_is_kept_up_to_its_next_note_and_our_stop(run: str) -> None:
    now = at(120)
    async with connection(run, autocommit=True) as conn:
        # Running, its last accepted note went up to T0+100: from there to its next note
        # (10 s from now) and our stop (15 s more).
        await agreement(conn, "ag0")
        await activity(conn, "act0", "ag0")
        await conn.execute(
            "INSERT INTO tasks.debit_note (id, run_id, agreement_id, activity_id, "
            "total_amount_due, increment, status, issued_at, decided_at) "
            "VALUES ('dn0', 'r1', 'ag0', 'act0', 2.0, 2.0, 'accepted', %s, %s)",
            (at(100), at(101)),
        )
        # Made, no activity yet: a whole new activity.
        await agreement(conn, "ag1")
        # Ended 50 s ago, its activity stopped at T0+60 before any note: start price and
        # its whole life, until its invoice is decided.
        await agreement(conn, "ag2", status="terminated", ended=70)
        await activity(conn, "act2", "ag2", stopped=60)
        # Its invoice was accepted: nothing more can come.
        await agreement(conn, "ag3", status="terminated", ended=70)
        await activity(conn, "act3", "ag3", stopped=60)
        await conn.execute(
            "INSERT INTO tasks.invoice (id, run_id, agreement_id, amount, increment, status, "
            "decided_at) VALUES ('inv3', 'r1', 'ag3', 1, 1, 'accepted', %s)",
            (at(80),),
        )
        # Ended over an hour ago without an invoice: no longer counted.
        await agreement(conn, "ag4", status="terminated", ended=-3700)

        found = await budget.exposure(conn, "r1", now, default_interval_s=120)
        assert found.agreements == {
            "ag0": RATE * (120 + 10 + 15 - 100),
            "ag1": Decimal("0.5") + RATE * (10 + 15),
            "ag2": Decimal("0.5") + RATE * (60 + 15 + 2),
        }
        assert found.running == 1
        assert found.total == sum(found.agreements.values())

        standing = await budget.standing(conn, "r1", now, Decimal(4), default_interval_s=120)
        assert standing.spent == 3
        assert not standing.fits and standing.room < 0
        assert standing.reason().startswith(
            "budget reached: 3 accepted in the last hour plus up to 1.2058 that 1 running"
        )
        roomy = await budget.standing(conn, "r1", now, Decimal(5), default_interval_s=120)
        assert roomy.fits and roomy.room == 2 - found.total


def test_terms_of_an_offer() -> None:
    terms = budget.Terms.from_properties(PROPERTIES, 120)
    assert (terms.threads, terms.interval_s, terms.per_second) == (4, 10.0, RATE)
    assert terms.new_activity() == Decimal("0.5") + RATE * 25
    bare = {k: v for k, v in PROPERTIES.items() if "threads" not in k and "interval" not in k}
    assert budget.Terms.from_properties(bare, 120).interval_s == 120.0
    assert budget.Terms.from_properties(bare, 120).per_second == Decimal("0.0011")
    with pytest.raises(ValueError):
        budget.Terms.from_properties({}, 120)


async def _waiting_locks(dsn: str) -> int:
    async with connection(dsn, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT count(*) AS n FROM pg_locks WHERE NOT granted AND database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        row = await cur.fetchone()
        assert row is not None
        return int(row["n"])


async def _until(condition, what: str) -> None:
    for _ in range(500):
        if await condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def test_standing_never_mixes_before_and_after_a_decision(run: str) -> None:
    """The supervisor's tick reads the accepted spend and the activities' exposure while
    payments are decided. A note accepted between the two reads was missing from the spend
    but already shortened the exposure: the tick saw room that was not there (0.5 here) and
    could hire an activity whose documents would then be refused. The standing must see a
    decision wholly or not at all."""
    now = at(120)
    async with connection(run, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO tasks.allocation (id, run_id, amount, platform, period_start)"
            " VALUES ('alloc-1', 'r1', 4, 'erc20-holesky-tglm', %s)",
            (T0,),
        )
        await agreement(conn, "ag0")
        await activity(conn, "act0", "ag0")
        await conn.execute(
            "INSERT INTO tasks.debit_note (id, run_id, agreement_id, activity_id, "
            "total_amount_due, increment, status, issued_at, decided_at) "
            "VALUES ('dn0', 'r1', 'ag0', 'act0', 2.0, 2.0, 'accepted', %s, %s)",
            (at(100), at(101)),
        )
        before = await budget.standing(conn, "r1", now, Decimal(4), default_interval_s=120)

    # Hold the exposure's read back (its first query reads tasks.proposal, a decision does
    # not) until a debit note has been decided meanwhile.
    async with connection(run) as blocker:
        await blocker.execute("LOCK TABLE tasks.proposal IN ACCESS EXCLUSIVE MODE")

        async def tick() -> budget.Standing:
            async with connection(run, autocommit=True) as conn:
                return await budget.standing(conn, "r1", now, Decimal(4), default_interval_s=120)

        async def decide() -> ledger.Decision:
            async with connection(run, autocommit=True) as conn:
                document = ledger.Document(
                    ledger.DEBIT_NOTE,
                    "dn1",
                    "ag0",
                    Decimal("2.5"),
                    activity_id="act0",
                    issued_at=at(115),
                )
                return await ledger.decide(conn, document, run_id="r1", budget=Decimal(4), now=now)

        standing_task = asyncio.create_task(tick())
        await _until(lambda: _waiting_locks_at_least(run, 1), "the tick to wait")
        decision_task = asyncio.create_task(decide())

        async def decided_or_waiting() -> bool:
            return decision_task.done() or await _waiting_locks(run) >= 2

        await _until(decided_or_waiting, "the decision to be made or to wait")
        await blocker.rollback()
        standing, decision = await asyncio.gather(standing_task, decision_task)

    assert decision.accepted and decision.increment == Decimal("0.5")
    async with connection(run, autocommit=True) as conn:
        after = await budget.standing(conn, "r1", now, Decimal(4), default_interval_s=120)
    assert (before.spent, after.spent) == (Decimal(2), Decimal("2.5"))
    assert (standing.spent, standing.exposure.total) in {
        (before.spent, before.exposure.total),
        (after.spent, after.exposure.total),
    }


async def _waiting_locks_at_least(dsn: str, count: int) -> bool:
    return await _waiting_locks(dsn) >= count
