"""golem-core's managers stack (payment, demand, negotiation with mid-agreement payments,
agreements, activities, work) run unchanged against the devnet."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from golem.managers import (
    DefaultAgreementManager,
    DefaultPaymentManager,
    DefaultProposalManager,
    MidAgreementPaymentsNegotiator,
    NegotiatingPlugin,
    PaymentPlatformNegotiator,
    RefreshingDemandManager,
    SequentialWorkManager,
    SingleUseActivityManager,
    WorkContext,
)
from golem.payload import VmPayload


async def test_managers_negotiate_mid_agreement_payments_and_pay(golem_node, devnet) -> None:
    payload = VmPayload(package_url="hash:sha3:ab:http://127.0.0.1/images/ab.gvmi")
    outputs: list[str] = []
    allocations: list = []

    async def work(context: WorkContext) -> str:
        allocations.append(payments._allocation)  # released (and forgotten) by stop()
        # SingleUseActivityManager has already deployed and started the activity.
        batch = await context.run("echo managed; sleep 2.5")
        await batch.wait(timeout=30)
        outputs.append(batch.events[-1].stdout)
        return outputs[-1]

    async with golem_node() as golem:
        payments = DefaultPaymentManager(golem, budget=1.0, shutdown_timeout=timedelta(seconds=20))
        demands = RefreshingDemandManager(golem, payments.get_allocation, [payload])
        negotiator = MidAgreementPaymentsNegotiator(
            min_debit_note_interval=timedelta(seconds=60),
            optimal_debit_note_interval=timedelta(seconds=60),
            min_payment_timeout=timedelta(seconds=120),
            optimal_payment_timeout=timedelta(seconds=120),
        )
        proposals = DefaultProposalManager(
            golem,
            demands.get_initial_proposal,
            plugins=[
                NegotiatingPlugin(proposal_negotiators=[PaymentPlatformNegotiator(), negotiator])
            ],
        )
        agreements = DefaultAgreementManager(golem, proposals.get_draft_proposal)
        activities = SingleUseActivityManager(golem, agreements.get_agreement)
        worker = SequentialWorkManager(golem, activities.get_activity)
        async with payments, demands, proposals, agreements:
            result = await worker.do_work(work)
            assert result.exception is None, result.exception
    assert outputs == ["managed\n"]

    market = devnet.network.market
    (agreement,) = [
        a
        for a in market.agreements.values()
        if a.approved_date is not None and a.app_session_id == golem.app_session_id
    ]
    offer = agreement.offer_proposal.properties
    # golem-core asks max(offered, optimal): the provider's 120 s, which it then echoes.
    assert offer["golem.com.scheme.payu.debit-note.interval-sec?"] == 120
    assert offer["golem.com.scheme.payu.payment-timeout-sec?"] == 120
    assert agreement.state == "Terminated"
    documents = devnet.network.payments
    notes = [n for n in documents.debit_notes.values() if n.agreement_id == agreement.id]
    assert notes and all(n.due is not None for n in notes)
    assert all(n.status == "ACCEPTED" for n in notes)  # validate_and_accept passed them
    (invoice,) = [i for i in documents.invoices.values() if i.agreement_id == agreement.id]
    assert invoice.status == "ACCEPTED"
    assert Decimal(invoice.amount) > 0
    # Everything was paid from golem-core's allocation: the notes, then the rest.
    (allocation,) = allocations
    assert allocation is not None
    paid_from = documents.allocations[allocation.id]
    assert paid_from.spent == invoice.amount
