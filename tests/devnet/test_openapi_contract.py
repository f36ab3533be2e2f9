"""Every devnet response during full flows, validated against yagna's OpenAPI contract.

Only the deviations documented in :func:`tests.support.openapi.check_devnet_response` are
tolerated.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from typing import Any

from golem.payload import VmPayload
from golem.resources import Deploy, NewDebitNote, NewInvoice, Run, Start

from golem_tasks.devnet.profile import Faults, Group, Profile, ProviderSpec
from tests.devnet.flows import (
    ACTIVITY,
    DEPLOY_START,
    MARKET,
    PAYMENT,
    Api,
    activity,
    agreement,
    allocation,
    counter,
    offers,
    run,
    run_script,
    subscribe,
)
from tests.support.openapi import check_devnet_response, known_operation


def check_all(recorded: list[tuple[str, str, int, Any]]) -> set[str]:
    """Validate every recorded response; return the operations seen."""
    problems, seen = [], set()
    for method, path, status, body in recorded:
        if not known_operation(method, path):
            # The image repository, yagna's activity listing (not in the contract) and
            # answers to routes that do not exist are outside the contract.
            assert (
                path.startswith(("/image.", "/images/"))
                or path == f"{ACTIVITY}/activity"
                or status in (404, 405)
            ), (method, path, status)
            continue
        seen.add(f"{method} {path.split('/')[1]}")
        try:
            check_devnet_response(method, path, status, body)
        except AssertionError as exc:
            problems.append(str(exc))
    assert not problems, "\n\n".join(problems[:10])
    return seen


async def test_responses_match_the_contract(start_devnet, http) -> None:
    recorded: list[tuple[str, str, int, Any]] = []

    def record(method: str, path: str, status: int, body: Any) -> None:
        recorded.append((method, path, status, body))

    profile = Profile(
        (
            Group(2, ProviderSpec(name="healthy")),
            Group(
                1, ProviderSpec(name="silent", subnet="silent", faults=Faults(agreement_timeout=1))
            ),
        )
    )
    async with start_devnet(profile=profile, time_scale=120, recorder=record) as net:
        await _golem_core_flow(net)
        await _raw_flow(Api(http, net.api_url, net.app_key))

    statuses = {status for *_, status, _ in recorded}
    assert {200, 201, 204, 400, 401, 404, 408, 409, 410} <= statuses
    assert len(check_all(recorded)) >= 3
    assert len(recorded) > 100


async def test_session_responses_match_the_contract(recorded) -> None:
    """Whatever the other devnet tests made the session devnet answer, also matches."""
    check_all(list(recorded))


async def _golem_core_flow(net) -> None:
    from golem.node import GolemNode

    async with GolemNode(app_key=net.app_key, api_url=net.api_url) as golem:
        allocation_ = await golem.create_allocation(1)
        seen: list = []

        async def accept(event) -> None:
            seen.append(event.resource)
            await event.resource.accept_full(allocation_)

        await golem.event_bus.on(NewDebitNote, accept)
        await golem.event_bus.on(NewInvoice, accept)
        payload = VmPayload(package_url="hash:sha3:ab:http://127.0.0.1/images/ab.gvmi")
        demand = await golem.create_demand(payload, allocations=[allocation_])
        proposal = await anext(demand.initial_proposals())
        theirs = await anext((await proposal.respond()).responses())
        agreement_ = await theirs.create_agreement()
        await agreement_.confirm()
        assert await agreement_.wait_for_approval()
        await agreement_.get_agreement_data()
        activity_ = await agreement_.create_activity()
        batch = await activity_.execute_commands(Deploy(), Start(), Run("echo contract"))
        await batch.wait(timeout=20)
        await activity_.get_state()
        await asyncio.sleep(1.2)  # a debit note (interval 120 s at scale 120)
        await activity_.destroy()
        await agreement_.terminate("done")
        for _ in range(50):
            if any(type(r).__name__ == "Invoice" for r in seen):
                break
            await asyncio.sleep(0.1)
    # A fresh node: golem-core refuses to list resources it already holds.
    async with GolemNode(app_key=net.app_key, api_url=net.api_url) as other:
        await other.allocations()  # released at the first node's exit
        assert await other.debit_notes()
        assert await other.invoices()


async def _raw_flow(api: Api) -> None:
    after = datetime.now(timezone.utc).isoformat()
    await api.ok("GET", "/me")
    await api.ok("GET", "/version/get")
    await api.ok("GET", f"{PAYMENT}/requestorAccounts")
    await api.ok("GET", f"{PAYMENT}/payments/status")
    budget = await allocation(api, "2")
    path = f"{PAYMENT}/allocations/{budget['allocationId']}"
    await api.ok("PUT", path, json_body={"totalAmount": "3"})
    await api.ok("GET", f"{PAYMENT}/allocations")
    await api.ok(
        "GET", f"{PAYMENT}/demandDecorations", params={"allocationIds": budget["allocationId"]}
    )

    demand_id = await subscribe(api)
    offer = (await offers(api, demand_id))[0]
    await api.ok("GET", f"{MARKET}/demands/{demand_id}/proposals/{offer['proposalId']}")
    await counter(api, demand_id, offer)
    await api.call("POST", f"{MARKET}/demands/{demand_id}/proposals/{offer['proposalId']}/reject")
    await api.call(
        "POST",
        f"{MARKET}/agreements",
        json_body={"proposalId": offer["proposalId"], "validTo": after},
    )
    await api.call("DELETE", f"{MARKET}/demands/{demand_id}")
    await api.call("DELETE", f"{MARKET}/demands/{demand_id}")

    extra = {
        "golem.com.scheme.payu.debit-note.interval-sec?": 60,
        "golem.com.scheme.payu.payment-timeout-sec?": 120,
    }
    agreement_id, _, _ = await agreement(api, extra=extra)
    agreement_path = f"{MARKET}/agreements/{agreement_id}"
    await api.call("POST", agreement_path + "/confirm")
    await api.ok("GET", f"{MARKET}/agreements")
    activity_id = await activity(api, agreement_id)
    base = f"{ACTIVITY}/activity/{activity_id}"
    await run_script(api, activity_id, [*DEPLOY_START, run("echo hi"), run("exit 2")])
    batch = await api.ok("POST", base + "/exec", json_body={"text": json.dumps([run("sleep 0.3")])})
    await api.call("GET", f"{base}/exec/{batch}", params={"commandIndex": 0, "timeout": 0.01})
    await api.ok("GET", base + "/command")
    await api.ok("GET", f"{base}/exec/{batch}", params={"timeout": 5})
    await api.ok("GET", base + "/usage")
    await api.ok("GET", base + "/agreement")
    await api.call("POST", base + "/exec", json_body={"text": "nonsense"})
    await asyncio.sleep(1.2)
    notes = await api.ok(
        "GET", f"{PAYMENT}/debitNoteEvents", params={"afterTimestamp": after, "timeout": 2}
    )
    note = await api.ok("GET", f"{PAYMENT}/debitNotes/{notes[0]['debitNoteId']}")
    await api.call(
        "POST",
        f"{PAYMENT}/debitNotes/{note['debitNoteId']}/reject",
        json_body={"rejectionReason": "BAD_SERVICE", "totalAmountAccepted": "0"},
    )
    await api.ok("GET", f"{PAYMENT}/debitNotes")
    await api.call("POST", agreement_path + "/terminate", json_body={"message": "again"})
    await api.call("POST", agreement_path + "/terminate/reason")
    await api.call("POST", agreement_path + "/wait", params={"timeout": 0})
    await api.ok("GET", f"{MARKET}/agreementEvents", params={"afterTimestamp": after, "timeout": 0})
    await asyncio.sleep(0.2)
    invoices = await api.ok(
        "GET", f"{PAYMENT}/invoiceEvents", params={"afterTimestamp": after, "timeout": 1}
    )
    invoice_id = invoices[-1]["invoiceId"]
    await api.ok("GET", f"{PAYMENT}/invoices/{invoice_id}")
    await api.call(
        "POST",
        f"{PAYMENT}/invoices/{invoice_id}/accept",
        json_body={"allocationId": budget["allocationId"], "totalAmountAccepted": "0.1"},
    )
    await api.ok("GET", f"{PAYMENT}/invoices")
    await api.ok("GET", f"{PAYMENT}/invoices/{invoice_id}/payments")
    await api.ok("GET", f"{PAYMENT}/debitNotes/{note['debitNoteId']}/payments")
    await api.ok("GET", f"{PAYMENT}/payments", params={"afterTimestamp": after, "timeout": 0})
    await api.ok("DELETE", base)

    silent = await _silent_agreement(api)
    await api.call("POST", f"{MARKET}/agreements/{silent}/wait", params={"timeout": 0.01})
    await api.call("POST", f"{MARKET}/agreements/{silent}/terminate", json_body={})
    await api.call("POST", f"{MARKET}/agreements/{silent}/cancel", json_body={"message": "x"})

    await api.call("DELETE", path)
    await api.call("DELETE", path)
    await api.call("GET", f"{PAYMENT}/allocations/unknown")
    async with api.session.get(api.base + "/me") as response:  # no app key
        assert response.status == 401


async def _silent_agreement(api: Api) -> str:
    """An agreement confirmed but never decided (409 on terminate, 408 on wait)."""
    demand_id = await subscribe(api, "silent")
    offer = (await offers(api, demand_id))[0]
    _, answer = await counter(api, demand_id, offer)
    agreement_id = await api.ok(
        "POST",
        f"{MARKET}/agreements",
        json_body={
            "proposalId": answer["proposal"]["proposalId"],
            "validTo": datetime.now(timezone.utc).replace(year=2100).isoformat(),
        },
    )
    await api.ok("POST", f"{MARKET}/agreements/{agreement_id}/confirm")
    return agreement_id
