"""The whole requestor flow driven by golem-core's GolemNode, unchanged, against the devnet."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from golem.payload import RepositoryVmPayload
from golem.resources import Deploy, NewDebitNote, NewInvoice, Run, Start

from golem_tasks.images import IMAGE_REPO_ENV, resolve_payload

HELLO_IMAGE = "9a3b5d67b0b27746283cb5f287c13eab1beaa12d92a9f536b747c7ae"


async def wait_for(predicate, timeout: float = 10.0) -> None:
    """Poll ``predicate`` (sync or async) until it is true."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def status(document) -> str:
    return (await document.get_data(force=True)).status


async def test_full_flow(devnet, golem_node, monkeypatch: pytest.MonkeyPatch) -> None:
    """allocation -> demand -> negotiation -> agreement -> activity -> deploy/start/run ->
    debit notes -> terminate -> invoice -> accept."""
    monkeypatch.setenv(IMAGE_REPO_ENV, devnet.image_repo)
    payload = await resolve_payload(RepositoryVmPayload(image_hash=HELLO_IMAGE))
    assert payload.package_url == (
        f"hash:sha3:{HELLO_IMAGE}:{devnet.api_url}/images/{HELLO_IMAGE}.gvmi"
    )

    async with golem_node() as golem:
        allocation = await golem.create_allocation(Decimal("5"))
        debit_notes, invoices = [], []

        async def on_debit_note(event: NewDebitNote) -> None:
            debit_notes.append(event.resource)
            await event.resource.validate_and_accept(allocation)

        async def on_invoice(event: NewInvoice) -> None:
            invoices.append(event.resource)
            await event.resource.validate_and_accept(allocation)

        await golem.event_bus.on(NewDebitNote, on_debit_note)
        await golem.event_bus.on(NewInvoice, on_invoice)

        demand = await golem.create_demand(payload, allocations=[allocation])
        data = await demand.get_data()
        assert data.properties["golem.srv.comp.task_package"] == payload.package_url

        proposal = await anext(demand.initial_proposals())
        assert proposal.initial
        assert (await proposal.get_provider_name()).startswith("healthy-")
        ours = await proposal.respond()
        theirs = await anext(ours.responses())
        assert theirs.draft and theirs.data.prev_proposal_id == ours.id

        agreement = await theirs.create_agreement()
        await agreement.confirm()
        assert await agreement.wait_for_approval()
        agreement_data = await agreement.get_agreement_data()
        assert agreement_data.provider_id == theirs.data.issuer_id

        activity = await agreement.create_activity()
        batch = await activity.execute_commands(
            Deploy(), Start(), Run(["/bin/echo", "hello", "devnet"])
        )
        results = await batch.wait(timeout=30)
        assert [r.result for r in results] == ["Ok", "Ok", "Ok"]
        assert results[-1].stdout == "hello devnet\n"
        assert (await activity.get_state()).state == ["Ready", None]

        # 120 s debit-note interval at time scale 60: one debit note every 2 s.
        await wait_for(lambda: len(debit_notes) >= 1, timeout=10)
        note = await debit_notes[0].get_data(force=True)
        assert note.activity_id == activity.id
        await wait_for(lambda: _is_accepted(debit_notes[0]))

        await activity.destroy()
        await agreement.terminate("done")
        await wait_for(lambda: len(invoices) == 1, timeout=10)
        invoice = await invoices[0].get_data()
        assert invoice.agreement_id == agreement.id
        await wait_for(lambda: _is_accepted(invoices[0]))
        invoice = await invoices[0].get_data()

        spent = Decimal((await allocation.get_data(force=True)).spent_amount)
        assert spent == Decimal(invoice.amount)
        assert spent > 0


async def _is_accepted(document) -> bool:
    return await status(document) == "ACCEPTED"
