"""Memory stays bounded: ended objects are forgotten after the retention period, and a
command's output is kept once and only up to a cap."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, timezone
from decimal import Decimal

from golem_tasks.devnet.exescript import MAX_CAPTURE
from tests.devnet.flows import (
    ACTIVITY,
    DEPLOY_START,
    MARKET,
    PAYMENT,
    Api,
    activity,
    agreement,
    allocation,
    run,
    run_script,
    subscribe,
)


async def test_ended_objects_are_forgotten_after_the_retention(start_devnet, http) -> None:
    async with start_devnet(providers=2, time_scale=60, retention=0.2) as net:
        fast = Api(http, net.api_url, net.app_key)
        session = uuid.uuid4().hex
        after = datetime.now(timezone.utc).isoformat()
        budget = await allocation(fast, "1")
        agreement_id, demand_id, _ = await agreement(fast, session=session)
        activity_id = await activity(fast, agreement_id)
        await run_script(fast, activity_id, [*DEPLOY_START, run("echo hi")])
        live = await allocation(fast, "1")  # kept: not released
        await fast.ok("DELETE", f"{PAYMENT}/allocations/{budget['allocationId']}")
        await fast.ok("POST", f"{MARKET}/agreements/{agreement_id}/terminate", json_body={})
        await fast.ok("DELETE", f"{MARKET}/demands/{demand_id}")
        invoices = []
        for _ in range(20):
            invoices = await fast.ok(
                "GET", f"{PAYMENT}/invoices", params={"afterTimestamp": after, "maxItems": 100}
            )
            if invoices:
                break
            await asyncio.sleep(0.05)
        (invoice,) = invoices
        # Readable right after the end ...
        assert (await fast.call("GET", f"{MARKET}/agreements/{agreement_id}"))[0] == 200
        await asyncio.sleep(0.5)
        # ... forgotten after the retention: the agreement, its activity, its demand and
        # proposals, the released allocation and the events.
        assert (await fast.call("GET", f"{MARKET}/agreements/{agreement_id}"))[0] == 404
        # A forgotten activity is an unknown one: yagna answers those 500.
        assert (await fast.call("GET", f"{ACTIVITY}/activity/{activity_id}/state"))[0] == 500
        network = net.network
        assert network is not None
        assert not network.market.demands and not network.market.proposals
        assert not network.exeunits.activities and not network._activities_of
        assert [a["allocationId"] for a in await fast.ok("GET", f"{PAYMENT}/allocations")] == [
            live["allocationId"]
        ]
        assert budget["allocationId"] not in network.payments.allocations
        assert len(network.market.agreement_events) == 0
        assert len(network.payments.invoice_events) == 0
        # The invoice nobody decided on stays (an hour after its agreement ended).
        path = f"{PAYMENT}/invoices/{invoice['invoiceId']}"
        assert (await fast.ok("GET", path))["status"] == "RECEIVED"
        accept = {"allocationId": live["allocationId"], "totalAmountAccepted": invoice["amount"]}
        await fast.ok("POST", path + "/accept", json_body=accept)
        await asyncio.sleep(0.5)
        assert (await fast.call("GET", path))[0] == 404  # settled: forgotten as well
        # Forgotten objects leave no bookkeeping behind.
        payments = network.payments
        assert not payments._accepted_agreement and not payments._invoice_of


async def test_live_objects_are_kept(start_devnet, http) -> None:
    async with start_devnet(providers=1, retention=0.2) as net:
        fast = Api(http, net.api_url, net.app_key)
        agreement_id, _, _ = await agreement(fast)
        activity_id = await activity(fast, agreement_id)
        demand_id = await subscribe(fast)
        await asyncio.sleep(0.6)
        assert (await fast.ok("GET", f"{MARKET}/agreements/{agreement_id}"))["state"] == "Approved"
        assert (await fast.ok("GET", f"{ACTIVITY}/activity/{activity_id}/state"))["state"][0] == (
            "Initialized"
        )
        assert (
            await fast.call("GET", f"{MARKET}/demands/{demand_id}/events", params={"timeout": 0})
        )[0] == 200


async def test_output_is_capped(api) -> None:
    """A command that prints more than MAX_CAPTURE bytes has only MAX_CAPTURE kept, both
    in its result and in the streamed events."""
    agreement_id, _, _ = await agreement(api)
    activity_id = await activity(api, agreement_id)
    await run_script(api, activity_id, DEPLOY_START)
    size = MAX_CAPTURE + (1 << 20)
    command = run(f"head -c {size} /dev/zero | tr '\\0' a; echo done >&2")
    batch_id = await api.ok(
        "POST", f"{ACTIVITY}/activity/{activity_id}/exec", json_body={"text": json.dumps([command])}
    )
    results = await api.ok(
        "GET", f"{ACTIVITY}/activity/{activity_id}/exec/{batch_id}", params={"timeout": 10}
    )
    assert results[0]["result"] == "Ok"
    assert len(results[0]["stdout"]) == MAX_CAPTURE and set(results[0]["stdout"]) == {"a"}
    assert results[0]["stderr"] == "done\n"
    url = f"{api.base}{ACTIVITY}/activity/{activity_id}/exec/{batch_id}"
    async with api.session.get(url, headers={**api.headers, "Accept": "text/event-stream"}) as r:
        text = (await r.read()).decode()
    streamed = 0
    for frame in text.split("\n\n"):
        for line in frame.splitlines():
            if line.startswith("data: "):
                kind = json.loads(line[len("data: ") :])["kind"]
                streamed += len(kind.get("stdout", ""))
    assert streamed == MAX_CAPTURE


async def test_accepted_totals_outlive_the_documents_of_a_running_activity(
    start_devnet, http
) -> None:
    """Debit notes are cumulative: once retention forgot the accepted notes of an activity
    that still runs, the next note must still pay only its increase (yagna keeps the
    agreement's accepted total), and so must the invoice."""
    terms = {
        "golem.com.scheme.payu.debit-note.interval-sec?": 30,  # 0.5 s at time scale 60
        "golem.com.scheme.payu.payment-timeout-sec?": 600,
    }
    async with start_devnet(providers=1, time_scale=60, retention=0.2) as net:
        fast = Api(http, net.api_url, net.app_key)
        session = uuid.uuid4().hex
        budget = await allocation(fast, "10")
        path = f"{PAYMENT}/allocations/{budget['allocationId']}"
        agreement_id, _, _ = await agreement(fast, extra=terms, session=session)
        activity_id = await activity(fast, agreement_id)
        await run_script(fast, activity_id, DEPLOY_START)

        async def next_note(after: str) -> dict:
            for _ in range(100):
                found = await fast.ok(
                    "GET",
                    f"{PAYMENT}/debitNoteEvents",
                    params={"afterTimestamp": after, "appSessionId": session, "timeout": 1},
                )
                received = [e for e in found if e["eventType"] == "DebitNoteReceivedEvent"]
                if received:
                    return await fast.ok(
                        "GET", f"{PAYMENT}/debitNotes/{received[0]['debitNoteId']}"
                    )
            raise AssertionError("no debit note")

        async def accept(kind: str, doc: dict, amount_field: str) -> None:
            doc_id = doc["debitNoteId" if kind == "debitNotes" else "invoiceId"]
            body = {
                "allocationId": budget["allocationId"],
                "totalAmountAccepted": doc[amount_field],
            }
            await fast.ok("POST", f"{PAYMENT}/{kind}/{doc_id}/accept", json_body=body)

        first = await next_note(datetime.now(timezone.utc).isoformat())
        await accept("debitNotes", first, "totalAmountDue")
        await asyncio.sleep(0.6)  # the accepted note is forgotten ...
        assert first["debitNoteId"] not in net.network.payments.debit_notes
        second = await next_note(datetime.now(timezone.utc).isoformat())
        assert Decimal(second["totalAmountDue"]) > Decimal(first["totalAmountDue"])
        await accept("debitNotes", second, "totalAmountDue")
        # ... and the next one pays only what it adds.
        spent = Decimal((await fast.ok("GET", path))["spentAmount"])
        assert spent == Decimal(second["totalAmountDue"])

        await asyncio.sleep(0.3)
        after = datetime.now(timezone.utc).isoformat()
        await fast.ok("POST", f"{MARKET}/agreements/{agreement_id}/terminate", json_body={})
        for _ in range(100):
            found = await fast.ok(
                "GET",
                f"{PAYMENT}/invoiceEvents",
                params={"afterTimestamp": after, "appSessionId": session, "timeout": 1},
            )
            if found:
                break
        invoice = await fast.ok("GET", f"{PAYMENT}/invoices/{found[0]['invoiceId']}")
        await accept("invoices", invoice, "amount")
        spent = Decimal((await fast.ok("GET", path))["spentAmount"])
        assert spent == Decimal(invoice["amount"])
