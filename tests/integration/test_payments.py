"""Payments settled against the devnet whatever happened to the allocation a decision was
made under: money decided stays decided, and the provider is paid."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from golem.node import GolemNode

from golem_tasks.clock import SystemClock
from golem_tasks.db.connect import connection, open_pool
from golem_tasks.devnet import Devnet
from golem_tasks.devnet.payment import Payments as DevnetPayments
from golem_tasks.store import ledger
from golem_tasks.supervisor import payments as payments_module
from golem_tasks.supervisor.allocations import Allocations
from golem_tasks.supervisor.payments import Payments
from tests.devnet.flows import MARKET, PAYMENT, Api, activity, agreement
from tests.integration.pipeline_support import devnet
from tests.support.audit import devnet_documents

TERMS = {
    "golem.com.scheme.payu.debit-note.interval-sec?": 30,  # 0.5 s at time scale 60
    "golem.com.scheme.payu.payment-timeout-sec?": 3600,
}


@dataclass
class Setup:
    net: Devnet
    api: Api
    node: GolemNode
    dsn: str
    pool: Any

    @property
    def devnet_payments(self) -> DevnetPayments:
        assert self.net.network is not None, "the devnet is not running"
        return self.net.network.payments

    def allocations(self, amount: str) -> Allocations:
        return Allocations(
            self.node,
            self.pool,
            run_id="r1",
            amount=Decimal(amount),
            network="holesky",
            driver="erc20",
            clock=SystemClock(),
        )

    def payments(self, allocations: Allocations) -> Payments:
        return Payments(
            self.node,
            self.pool,
            run_id="r1",
            run_start=datetime.now(timezone.utc),
            budget=Decimal(10),
            allocations=allocations,
            clock=SystemClock(),
        )

    async def debit_note(self, subnet: str = "paid") -> dict[str, Any]:
        """A debit note of a new agreement of this run, as the devnet serves it."""
        session = uuid.uuid4().hex
        agreement_id, _, _ = await agreement(self.api, subnet, extra=TERMS, session=session)
        activity_id = await activity(self.api, agreement_id)
        async with connection(self.dsn, autocommit=True) as conn:
            await conn.execute(
                "INSERT INTO tasks.agreement (id, run_id, provider_id, status) "
                "VALUES (%s, 'r1', 'p', 'approved')",
                (agreement_id,),
            )
        for _ in range(100):
            notes = [
                d
                for d in await devnet_documents(self.net)
                if d["kind"] == "debitNotes" and d["activityId"] == activity_id
            ]
            if notes:
                return notes[0]
            await asyncio.sleep(0.1)
        raise AssertionError("no debit note")


@pytest.fixture
async def setup(installed_dsn: str) -> AsyncIterator[Setup]:
    free = {"name": "free", "subnet": "free", "price_duration_hour": 0.0, "price_cpu_hour": 0.0}
    paid = {"name": "paid", "subnet": "paid", "price_duration_hour": 3.6}
    async with connection(installed_dsn, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO tasks.run (id, app, workers, budget_per_hour, subnet, payment_platform)"
            " VALUES ('r1', 'app', 1, 1, 'public', 'erc20-holesky-tglm')"
        )
    async with devnet([free, paid], seed=31, time_scale=60) as net:
        pool = await open_pool(installed_dsn, max_size=4)
        try:
            async with (
                aiohttp.ClientSession() as http,
                GolemNode(net.app_key, api_url=net.api_url) as node,
            ):
                yield Setup(net, Api(http, net.api_url, net.app_key), node, installed_dsn, pool)
        finally:
            await pool.close()


async def decide(setup: Setup, note: dict[str, Any], now: datetime) -> ledger.Decision:
    async with connection(setup.dsn, autocommit=True) as conn:
        document = ledger.Document(
            ledger.DEBIT_NOTE,
            note["debitNoteId"],
            note["agreementId"],
            Decimal(note["totalAmountDue"]),
            activity_id=note["activityId"],
        )
        return await ledger.decide(conn, document, run_id="r1", budget=Decimal(10), now=now)


async def status(setup: Setup, note_id: str) -> str:
    return (await setup.api.ok("GET", f"{PAYMENT}/debitNotes/{note_id}"))["status"]


async def test_acceptance_under_a_released_allocation_is_paid_from_the_current_one(
    setup: Setup,
) -> None:
    """Decided under allocation A, then the supervisor died and was resumed with another
    --budget: A was released. The provider is paid from the new allocation, and the ledger
    still equals what the network spent."""
    first = setup.allocations("1")
    a = await first.current()
    note = await setup.debit_note("paid")
    assert Decimal(note["totalAmountDue"]) > 0
    decision = await decide(setup, note, datetime.now(timezone.utc))
    assert decision.accepted and decision.allocation_id == a.id
    resumed = setup.allocations("2")
    b = await resumed.current()  # releases A
    assert b.id != a.id and a.id not in {x.id for x in [await resumed.current()]}
    payments = setup.payments(resumed)
    await payments._handle(setup.node.debit_note(note["debitNoteId"]))
    assert await status(setup, note["debitNoteId"]) == "ACCEPTED"
    held = setup.devnet_payments.allocations
    assert held[a.id].spent == 0 and held[b.id].spent == Decimal(note["totalAmountDue"])
    async with connection(setup.dsn, autocommit=True) as conn:
        row = await (
            await conn.execute(
                "SELECT * FROM tasks.debit_note WHERE id = %s", (note["debitNoteId"],)
            )
        ).fetchone()
    assert row is not None
    assert row["allocation_id"] == a.id and row["paid_from"] == b.id
    assert row["increment"] == held[b.id].spent


async def test_note_that_adds_nothing_without_an_allocation_is_settled(setup: Setup) -> None:
    """A note that adds nothing, decided when no allocation of ours covered the moment (an
    hour boundary), is accepted from whichever allocation is current: no assert, no
    retrying for ever."""
    allocations = setup.allocations("1")
    note = await setup.debit_note("free")
    assert note["totalAmountDue"] == "0"  # a free provider's note adds nothing
    decision = await decide(setup, note, datetime.now(timezone.utc) + timedelta(days=1))
    assert decision.accepted and decision.increment == 0 and decision.allocation_id is None
    payments = setup.payments(allocations)
    await payments._handle(setup.node.debit_note(note["debitNoteId"]))
    assert await status(setup, note["debitNoteId"]) == "ACCEPTED"


async def test_a_document_that_keeps_failing_is_given_up_with_a_recorded_error(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retries are bounded: after MAX_FAILURES the document is left to reconciliation and
    the run's errors say why."""
    monkeypatch.setattr(payments_module, "MAX_DELAY_S", 0.01)
    payments = setup.payments(setup.allocations("1"))
    note = setup.node.debit_note("no-such-note")
    runner = asyncio.create_task(payments.run())
    try:
        payments.enqueue(note)
        for _ in range(200):
            if note.id in payments._given_up:
                break
            await asyncio.sleep(0.05)
        assert note.id in payments._given_up
        await asyncio.sleep(0.1)
        async with connection(setup.dsn, autocommit=True) as conn:
            errors = await (
                await conn.execute("SELECT message FROM tasks.error WHERE kind = 'payment'")
            ).fetchall()
        assert len(errors) == 1 and "after 8 attempts" in errors[0]["message"]
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


async def test_a_rejected_invoice_bans_its_provider_although_its_agreement_ended(
    setup: Setup,
) -> None:
    """An invoice comes once its agreement has ended. One that does not fit the budget
    was overcharged: it is rejected and its provider must not be hired again in the run.
    The ban went through the agreement-end request, which ignores ended agreements, so the
    provider of a rejected invoice stayed hireable."""
    note = await setup.debit_note("paid")
    agreement_id = note["agreementId"]
    path = f"{MARKET}/agreements/{agreement_id}/terminate"
    await setup.api.ok("POST", path, json_body={"message": "done"})
    async with connection(setup.dsn, autocommit=True) as conn:
        await conn.execute(
            "UPDATE tasks.agreement SET status = 'terminated', approved_at = now(), "
            "terminated_at = now() WHERE id = %s",
            (agreement_id,),
        )
    for _ in range(100):
        invoices = [
            d
            for d in await devnet_documents(setup.net)
            if d["kind"] == "invoices" and d["agreementId"] == agreement_id
        ]
        if invoices:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("no invoice")
    assert Decimal(invoices[0]["amount"]) > 0
    tiny = Decimal("0.000000001")
    payments = Payments(
        setup.node,
        setup.pool,
        run_id="r1",
        run_start=datetime.now(timezone.utc),
        budget=tiny,
        allocations=setup.allocations(str(tiny)),
        clock=SystemClock(),
    )
    await payments._handle(setup.node.invoice(invoices[0]["invoiceId"]))
    got = await setup.api.ok("GET", f"{PAYMENT}/invoices/{invoices[0]['invoiceId']}")
    assert got["status"] == "REJECTED"
    async with connection(setup.dsn, autocommit=True) as conn:
        avoided = await (
            await conn.execute(
                "SELECT DISTINCT provider_id FROM tasks.agreement "
                "WHERE run_id = 'r1' AND avoid_reason IS NOT NULL"
            )
        ).fetchall()
        errors = await (
            await conn.execute(
                "SELECT kind FROM tasks.error WHERE agreement_id = %s", (agreement_id,)
            )
        ).fetchall()
    assert [row["provider_id"] for row in avoided] == ["p"]
    assert [row["kind"] for row in errors] == ["overcharge"]


class SetClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.at = datetime.now(timezone.utc)

    def now(self) -> datetime:
        return self.at

    async def sleep(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


async def test_a_new_hour_gets_its_allocation_when_the_account_holds_less_than_two_hours(
    setup: Setup,
) -> None:
    """Each run-hour gets an allocation for the whole budget, and the last hour's is kept
    ten minutes more. With an account holding less than two hours' budget, the new hour's
    allocation was refused ("Insufficient funds") for as long as the old one was held; and
    as the supervisor's tick asks for the current allocation before releasing past ones, it
    failed on every tick for ever: nothing accepted, nothing released. The old hour's
    allocation is released for the new one (what was decided under it is paid from the
    current one)."""
    setup.devnet_payments.balance = Decimal("1.5")
    clock = SetClock()
    allocations = Allocations(
        setup.node,
        setup.pool,
        run_id="r1",
        amount=Decimal(1),
        network="holesky",
        driver="erc20",
        clock=clock,
    )
    first = await allocations.current()
    clock.at += timedelta(hours=1, seconds=1)
    second = await allocations.current()
    assert second.id != first.id
    held = setup.devnet_payments.allocations
    assert held[first.id].released is not None and held[second.id].released is None
    async with connection(setup.dsn, autocommit=True) as conn:
        rows = await (
            await conn.execute("SELECT id, released_at FROM tasks.allocation ORDER BY created_at")
        ).fetchall()
    assert [(r["id"], r["released_at"] is not None) for r in rows] == [
        (first.id, True),
        (second.id, False),
    ]
    # The tick's next step, and the next hour, still work.
    await allocations.release_past()
    clock.at += timedelta(hours=1)
    assert (await allocations.current()).id not in (first.id, second.id)
