"""Payments: account, allocations, decorations, debit notes, invoices, events, acceptance."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone
from decimal import Decimal

from golem_tasks.devnet.profile import Group, Profile, ProviderSpec
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
)

TERMS = {
    "golem.com.scheme.payu.debit-note.interval-sec?": 60,
    "golem.com.scheme.payu.payment-timeout-sec?": 90,
}


async def wait_events(api: Api, kind: str, after: str, session: str, count: int) -> list:
    found: list = []
    for _ in range(100):
        found = await api.ok(
            "GET",
            f"{PAYMENT}/{kind}Events",
            params={"afterTimestamp": after, "appSessionId": session, "timeout": 1},
        )
        if len(found) >= count:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"only {len(found)} {kind} events")


async def test_accounts_and_decorations(api) -> None:
    accounts = await api.ok("GET", f"{PAYMENT}/requestorAccounts")
    me = await api.ok("GET", "/me")
    assert accounts == [
        {
            "platform": "erc20-holesky-tglm",
            "address": me["identity"],
            "driver": "erc20",
            "network": "holesky",
            "token": "tGLM",
            "send": True,
            "receive": False,
        }
    ]
    first, second = await allocation(api, "1"), await allocation(api, "2")
    ids = f"{first['allocationId']},{second['allocationId']}"
    decoration = await api.ok("GET", f"{PAYMENT}/demandDecorations", params={"allocationIds": ids})
    assert {
        "key": "golem.com.payment.platform.erc20-holesky-tglm.address",
        "value": me["identity"],
    } in (decoration["properties"])
    assert decoration["constraints"] == [
        "(|(golem.com.payment.platform.erc20-holesky-tglm.address=*))",
        "(golem.com.payment.protocol.version>1)",
    ]
    status, _ = await api.call("GET", f"{PAYMENT}/demandDecorations", params={"allocationIds": "x"})
    assert status == 404


async def test_payment_network_and_driver_are_honoured(start_devnet, http, monkeypatch) -> None:
    monkeypatch.setenv("YAGNA_PAYMENT_NETWORK", "polygon")
    async with start_devnet(providers=1) as net:
        assert net.env()["YAGNA_PAYMENT_NETWORK"] == "polygon"
        fast = Api(http, net.api_url, net.app_key)
        (account,) = await fast.ok("GET", f"{PAYMENT}/requestorAccounts")
        assert account["platform"] == "erc20-polygon-glm" and account["token"] == "GLM"
        created = await allocation(fast)
        assert created["paymentPlatform"] == "erc20-polygon-glm"
        status, _ = await fast.call(
            "POST",
            f"{PAYMENT}/allocations",
            json_body={"totalAmount": "1", "paymentPlatform": "erc20-holesky-tglm"},
        )
        assert status == 400


async def test_allocation_lifecycle(api) -> None:
    created = await allocation(api, "3.5")
    assert created["totalAmount"] == "3.5" and created["spentAmount"] == "0"
    assert created["remainingAmount"] == "3.5"
    path = f"{PAYMENT}/allocations/{created['allocationId']}"
    assert await api.ok("GET", path) == created
    assert created in await api.ok("GET", f"{PAYMENT}/allocations")
    amended = await api.ok("PUT", path, json_body={"totalAmount": "4"})
    assert amended["totalAmount"] == "4" and amended["remainingAmount"] == "4"
    assert (await api.call("DELETE", path))[0] == 200
    assert (await api.call("DELETE", path))[0] == 410
    assert (await api.call("GET", path))[0] == 404
    assert (await api.call("PUT", path, json_body={"totalAmount": "5"}))[0] == 404
    for bad in (
        {"totalAmount": "-1"},
        {"totalAmount": "lots"},
        {},
        {"totalAmount": "1", "timeout": "x"},
    ):
        assert (await api.call("POST", f"{PAYMENT}/allocations", json_body=bad))[0] == 400, bad
    status, body = await api.call(
        "POST", f"{PAYMENT}/allocations", json_body={"totalAmount": "1e9"}
    )
    assert status == 400 and "Insufficient funds" in body["message"]


async def test_debit_notes_follow_negotiated_terms_and_usage(api) -> None:
    """At time scale 60 a 60 s interval is 1 s; amounts are the linear price of the usage."""
    session = uuid.uuid4().hex
    after = datetime.now(timezone.utc).isoformat()
    agreement_id, _, _ = await agreement(api, extra=TERMS, session=session)
    offer = (await api.ok("GET", f"{MARKET}/agreements/{agreement_id}"))["offer"]["properties"]
    cpu_price, duration_price, start_price = (
        Decimal(c) for c in offer["golem.com.pricing.model.linear.coeffs"]
    )
    activity_id = await activity(api, agreement_id)
    await run_script(
        api, activity_id, [*DEPLOY_START, run("i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done")]
    )
    events = await wait_events(api, "debitNote", after, session, 2)
    assert {e["eventType"] for e in events} == {"DebitNoteReceivedEvent"}
    notes = [await api.ok("GET", f"{PAYMENT}/debitNotes/{e['debitNoteId']}") for e in events]
    first, second = notes[:2]
    assert second["previousDebitNoteId"] == first["debitNoteId"]
    gap = datetime.fromisoformat(second["timestamp"]) - datetime.fromisoformat(first["timestamp"])
    assert 0.7 < gap.total_seconds() < 2.5
    for note in notes[:2]:
        assert note["activityId"] == activity_id and note["agreementId"] == agreement_id
        assert note["status"] == "RECEIVED"
        cpu, duration = note["usageCounterVector"]
        expected = start_price + cpu_price * Decimal(cpu) + duration_price * Decimal(duration)
        assert abs(Decimal(note["totalAmountDue"]) - expected) < Decimal("1e-15")
        due = datetime.fromisoformat(note["paymentDueDate"]) - datetime.fromisoformat(
            note["timestamp"]
        )
        assert due.total_seconds() == 90  # the negotiated payment timeout
    assert Decimal(second["totalAmountDue"]) >= Decimal(first["totalAmountDue"])
    # Another app session sees none of these events.
    other = await api.ok(
        "GET",
        f"{PAYMENT}/debitNoteEvents",
        params={"afterTimestamp": after, "appSessionId": "other", "timeout": 0},
    )
    assert other == []
    later = await api.ok(
        "GET",
        f"{PAYMENT}/debitNoteEvents",
        params={"afterTimestamp": events[-1]["eventDate"], "appSessionId": session, "timeout": 0},
    )
    assert all(e["eventDate"] > events[-1]["eventDate"] for e in later)
    await api.ok(
        "POST", f"{MARKET}/agreements/{agreement_id}/terminate", json_body={"message": "x"}
    )


async def test_accept_spends_only_what_is_new_and_invoice_settles(api) -> None:
    session = uuid.uuid4().hex
    after = datetime.now(timezone.utc).isoformat()
    budget = await allocation(api, "1")
    agreement_id, _, _ = await agreement(api, extra=TERMS, session=session)
    activity_id = await activity(api, agreement_id)
    await run_script(api, activity_id, DEPLOY_START)
    events = await wait_events(api, "debitNote", after, session, 2)
    first, second = [
        await api.ok("GET", f"{PAYMENT}/debitNotes/{e['debitNoteId']}") for e in events[:2]
    ]
    accept = {"allocationId": budget["allocationId"]}
    wrong = await api.call(
        "POST",
        f"{PAYMENT}/debitNotes/{first['debitNoteId']}/accept",
        json_body={**accept, "totalAmountAccepted": "123"},
    )
    assert wrong[0] == 400 and wrong[1]["message"] == "Invalid amount accepted"
    for note in (first, second, second):  # accepting twice is harmless
        await api.ok(
            "POST",
            f"{PAYMENT}/debitNotes/{note['debitNoteId']}/accept",
            json_body={**accept, "totalAmountAccepted": note["totalAmountDue"]},
        )
    spent = Decimal(
        (await api.ok("GET", f"{PAYMENT}/allocations/{budget['allocationId']}"))["spentAmount"]
    )
    assert spent == Decimal(second["totalAmountDue"])
    accepted = await api.ok(
        "GET",
        f"{PAYMENT}/debitNoteEvents",
        params={"afterTimestamp": after, "appSessionId": session, "timeout": 0, "maxEvents": 100},
    )
    assert sum(e["eventType"] == "DebitNoteAcceptedEvent" for e in accepted) == 2

    await api.ok(
        "POST", f"{MARKET}/agreements/{agreement_id}/terminate", json_body={"message": "ok"}
    )
    (event,) = await wait_events(api, "invoice", after, session, 1)
    assert event["eventType"] == "InvoiceReceivedEvent"
    invoice = await api.ok("GET", f"{PAYMENT}/invoices/{event['invoiceId']}")
    assert invoice["agreementId"] == agreement_id and invoice["activityIds"] == [activity_id]
    assert Decimal(invoice["amount"]) >= spent
    await api.ok(
        "POST",
        f"{PAYMENT}/invoices/{invoice['invoiceId']}/accept",
        json_body={**accept, "totalAmountAccepted": invoice["amount"]},
    )
    final = await api.ok("GET", f"{PAYMENT}/allocations/{budget['allocationId']}")
    assert Decimal(final["spentAmount"]) == Decimal(invoice["amount"])
    assert Decimal(final["remainingAmount"]) == 1 - Decimal(invoice["amount"])
    assert (await api.ok("GET", f"{PAYMENT}/invoices/{invoice['invoiceId']}"))[
        "status"
    ] == "ACCEPTED"
    payments = await api.ok(
        "GET",
        f"{PAYMENT}/payments",
        params={"afterTimestamp": after, "appSessionId": session, "timeout": 0},
    )
    assert sum(Decimal(p["amount"]) for p in payments) == Decimal(invoice["amount"])


async def test_accepting_more_than_the_allocation_holds_is_refused(start_devnet, http) -> None:
    session = uuid.uuid4().hex
    profile = Profile((Group(1, ProviderSpec(name="pricey", price_start=5.0)),))
    async with start_devnet(profile=profile, time_scale=60) as net:
        fast = Api(http, net.api_url, net.app_key)
        after = datetime.now(timezone.utc).isoformat()
        small = await allocation(fast, "2")
        agreement_id, _, _ = await agreement(fast, session=session)
        await activity(fast, agreement_id)
        await fast.ok("POST", f"{MARKET}/agreements/{agreement_id}/terminate", json_body={})
        (event,) = await wait_events(fast, "invoice", after, session, 1)
        invoice = await fast.ok("GET", f"{PAYMENT}/invoices/{event['invoiceId']}")
        assert Decimal(invoice["amount"]) > 5
        status, body = await fast.call(
            "POST",
            f"{PAYMENT}/invoices/{invoice['invoiceId']}/accept",
            json_body={
                "allocationId": small["allocationId"],
                "totalAmountAccepted": invoice["amount"],
            },
        )
        assert status == 400 and body["message"].startswith(
            "Not enough funds. Allocated: 2 Needed: 5"
        )
        assert (await fast.ok("GET", f"{PAYMENT}/allocations/{small['allocationId']}"))[
            "spentAmount"
        ] == "0"


async def test_reject_debit_note_makes_the_provider_terminate(api) -> None:
    session = uuid.uuid4().hex
    after = datetime.now(timezone.utc).isoformat()
    agreement_id, _, _ = await agreement(api, extra=TERMS, session=session)
    await activity(api, agreement_id)
    (event, *_) = await wait_events(api, "debitNote", after, session, 1)
    note_id = event["debitNoteId"]
    rejection = {"rejectionReason": "INCORRECT_AMOUNT", "totalAmountAccepted": "0", "message": "no"}
    assert (await api.call("POST", f"{PAYMENT}/debitNotes/{note_id}/reject", json_body={"x": 1}))[
        0
    ] == 400
    await api.ok("POST", f"{PAYMENT}/debitNotes/{note_id}/reject", json_body=rejection)
    assert (await api.ok("GET", f"{PAYMENT}/debitNotes/{note_id}"))["status"] == "REJECTED"
    events = await wait_events(api, "debitNote", event["eventDate"], session, 1)
    assert events[0]["eventType"] == "DebitNoteRejectedEvent"
    assert events[0]["rejection"] == rejection
    reason = await api.ok("POST", f"{MARKET}/agreements/{agreement_id}/terminate/reason")
    assert reason["terminator"] == "Provider" and "rejected" in reason["reason"]["message"]


async def test_unaccepted_debit_note_makes_the_provider_terminate(api) -> None:
    session = uuid.uuid4().hex
    # accept-timeout 30 s = 0.5 s at time scale 60
    extra = {**TERMS, "golem.com.payment.debit-notes.accept-timeout?": 30}
    agreement_id, _, _ = await agreement(api, extra=extra, session=session)
    activity_id = await activity(api, agreement_id)
    path = f"{MARKET}/agreements/{agreement_id}"
    for _ in range(60):
        if (await api.ok("GET", path))["state"] == "Terminated":
            break
        await asyncio.sleep(0.1)
    reason = await api.ok("POST", path + "/terminate/reason")
    assert reason["reason"]["golem.provider.code"] == "DebitNoteNotAccepted"
    state = await api.ok("GET", f"{ACTIVITY}/activity/{activity_id}/state")
    assert state["state"][0] == "Terminated"


async def test_unknown_documents(api) -> None:
    for path in ("debitNotes/x", "invoices/x"):
        assert (await api.call("GET", f"{PAYMENT}/{path}"))[0] == 404
        body = {"allocationId": "a", "totalAmountAccepted": "1"}
        assert (await api.call("POST", f"{PAYMENT}/{path}/accept", json_body=body))[0] == 404
    notes = await api.ok("GET", f"{PAYMENT}/debitNotes", params={"maxItems": 1})
    assert len(notes) <= 1


async def test_rejected_invoice_can_still_be_accepted(api) -> None:
    session = uuid.uuid4().hex
    after = datetime.now(timezone.utc).isoformat()
    budget = await allocation(api, "1")
    agreement_id, _, _ = await agreement(api, session=session)
    await api.ok("POST", f"{MARKET}/agreements/{agreement_id}/terminate", json_body={})
    (event,) = await wait_events(api, "invoice", after, session, 1)
    path = f"{PAYMENT}/invoices/{event['invoiceId']}"
    invoice = await api.ok("GET", path)
    rejection = {"rejectionReason": "BAD_SERVICE", "totalAmountAccepted": "0", "message": "slow"}
    await api.ok("POST", path + "/reject", json_body=rejection)
    assert (await api.ok("GET", path))["status"] == "REJECTED"
    events = await wait_events(api, "invoice", event["eventDate"], session, 1)
    assert events[0]["eventType"] == "InvoiceRejectedEvent"
    assert events[0]["rejection"] == rejection
    accept = {"allocationId": budget["allocationId"], "totalAmountAccepted": invoice["amount"]}
    await api.ok("POST", path + "/accept", json_body=accept)
    assert (await api.ok("GET", path))["status"] == "ACCEPTED"
    status, _ = await api.call("POST", path + "/reject", json_body=rejection)
    assert status == 400  # an accepted invoice cannot be rejected any more


async def test_absurd_payment_terms_are_capped(api) -> None:
    """Terms far beyond any real agreement are lowered, so due dates stay dates and the
    agreement still ends with an invoice."""
    week = 7 * 24 * 3600
    session = uuid.uuid4().hex
    after = datetime.now(timezone.utc).isoformat()
    huge = {
        "golem.com.scheme.payu.debit-note.interval-sec?": 6,  # 0.1 s at time scale 60
        "golem.com.scheme.payu.payment-timeout-sec?": 1e15,
        "golem.com.payment.debit-notes.accept-timeout?": 1e300,
    }
    agreement_id, _, draft = await agreement(api, extra=huge, session=session)
    terms = draft["properties"]
    assert terms["golem.com.scheme.payu.payment-timeout-sec?"] == week
    assert terms["golem.com.payment.debit-notes.accept-timeout?"] == week
    await activity(api, agreement_id)
    (event, *_) = await wait_events(api, "debitNote", after, session, 1)
    note = await api.ok("GET", f"{PAYMENT}/debitNotes/{event['debitNoteId']}")
    due = datetime.fromisoformat(note["paymentDueDate"]) - datetime.fromisoformat(note["timestamp"])
    assert due.total_seconds() == week
    status, body = await api.call(
        "POST", f"{MARKET}/agreements/{agreement_id}/terminate", json_body={"message": "x"}
    )
    assert status == 204, body
    (invoice_event,) = await wait_events(api, "invoice", after, session, 1)
    invoice = await api.ok("GET", f"{PAYMENT}/invoices/{invoice_event['invoiceId']}")
    assert invoice["agreementId"] == agreement_id


async def test_debit_note_interval_is_capped_at_the_longest_agreement(api) -> None:
    huge = {
        "golem.com.scheme.payu.debit-note.interval-sec?": 1e15,
        "golem.com.scheme.payu.payment-timeout-sec?": 120,
    }
    agreement_id, _, draft = await agreement(api, extra=huge)
    assert draft["properties"]["golem.com.scheme.payu.debit-note.interval-sec?"] == 36000
    await api.ok("POST", f"{MARKET}/agreements/{agreement_id}/terminate", json_body={})


async def test_payments_of_a_document_and_driver_status(api) -> None:
    session = uuid.uuid4().hex
    after = datetime.now(timezone.utc).isoformat()
    budget = await allocation(api, "1")
    often = {**TERMS, "golem.com.scheme.payu.debit-note.interval-sec?": 6}
    agreement_id, _, _ = await agreement(api, extra=often, session=session)
    await activity(api, agreement_id)
    (event, *_) = await wait_events(api, "debitNote", after, session, 1)
    note_path = f"{PAYMENT}/debitNotes/{event['debitNoteId']}"
    note = await api.ok("GET", note_path)
    assert await api.ok("GET", note_path + "/payments") == []
    accept = {"allocationId": budget["allocationId"], "totalAmountAccepted": note["totalAmountDue"]}
    await api.ok("POST", note_path + "/accept", json_body=accept)
    (paid,) = await api.ok("GET", note_path + "/payments")
    assert paid["amount"] == note["totalAmountDue"]
    assert paid["activityPayments"][0]["activityId"] == note["activityId"]
    assert await api.ok("GET", note_path + "/payments", params={"afterTimestamp": after})
    assert not await api.ok(
        "GET", note_path + "/payments", params={"afterTimestamp": paid["timestamp"]}
    )
    await api.ok("POST", f"{MARKET}/agreements/{agreement_id}/terminate", json_body={})
    (invoice_event,) = await wait_events(api, "invoice", after, session, 1)
    invoice_path = f"{PAYMENT}/invoices/{invoice_event['invoiceId']}"
    invoice = await api.ok("GET", invoice_path)
    accept = {"allocationId": budget["allocationId"], "totalAmountAccepted": invoice["amount"]}
    await api.ok("POST", invoice_path + "/accept", json_body=accept)
    paid_for_invoice = await api.ok("GET", invoice_path + "/payments")
    assert [p["agreementPayments"][0]["agreementId"] for p in paid_for_invoice] in (
        [agreement_id],
        [],  # nothing left to pay once the debit note covered it all
    )
    assert (await api.call("GET", f"{PAYMENT}/invoices/nope/payments"))[0] == 404
    assert await api.ok("GET", f"{PAYMENT}/payments/status") == []
    assert await api.ok("GET", f"{PAYMENT}/payments/status", params={"network": "holesky"}) == []
    assert (await api.call("GET", f"{PAYMENT}/payments/status", params={"driver": "zksync"}))[
        0
    ] == 404


async def test_document_listings_page_by_the_contract(api) -> None:
    """maxItems: default 10, at most 100."""
    session = uuid.uuid4().hex
    after = datetime.now(timezone.utc).isoformat()
    fast = {**TERMS, "golem.com.scheme.payu.debit-note.interval-sec?": 1}  # 60 notes/s
    agreement_id, _, _ = await agreement(api, extra=fast, session=session)
    await activity(api, agreement_id)
    for _ in range(50):
        events = await api.ok(
            "GET",
            f"{PAYMENT}/debitNoteEvents",
            params={"afterTimestamp": after, "appSessionId": session, "maxEvents": 100},
        )
        if len(events) >= 12:
            break
        await asyncio.sleep(0.1)
    await api.ok("POST", f"{MARKET}/agreements/{agreement_id}/terminate", json_body={})
    listed = await api.ok("GET", f"{PAYMENT}/debitNotes", params={"afterTimestamp": after})
    assert len(listed) == 10
    more = await api.ok(
        "GET", f"{PAYMENT}/debitNotes", params={"afterTimestamp": after, "maxItems": 100}
    )
    assert len(more) >= 12
    assert (await api.call("GET", f"{PAYMENT}/debitNotes", params={"maxItems": 101}))[0] == 400
