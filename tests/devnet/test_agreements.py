"""Agreements: create, confirm, wait, get, list, terminate with a reason, events, expiry."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tests.devnet.flows import MARKET, Api, agreement, counter, offers, subscribe


def _in(seconds: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).isoformat()


async def _draft(api: Api, subnet: str = "public") -> tuple[str, dict]:
    demand_id = await subscribe(api, subnet)
    offer = (await offers(api, demand_id))[0]
    _, answer = await counter(api, demand_id, offer)
    return demand_id, answer["proposal"]


async def test_lifecycle_and_events(api) -> None:
    before = datetime.now(timezone.utc).isoformat()
    demand_id, draft = await _draft(api)
    agreement_id = await api.ok(
        "POST",
        f"{MARKET}/agreements",
        json_body={"proposalId": draft["proposalId"], "validTo": _in(60)},
    )
    path = f"{MARKET}/agreements/{agreement_id}"
    assert (await api.ok("GET", path))["state"] == "Proposal"
    # Not confirmed yet: waiting makes no sense, terminating is too early.
    assert (await api.call("POST", path + "/wait", params={"timeout": 0}))[0] == 409
    assert (await api.call("POST", path + "/terminate", json_body={"message": "x"}))[0] == 409

    assert (await api.call("POST", path + "/confirm", params={"appSessionId": "s1"}))[0] == 204
    assert (await api.call("POST", path + "/confirm"))[0] == 410
    assert (await api.call("POST", path + "/wait", params={"timeout": 5}))[0] == 204

    data = await api.ok("GET", path)
    assert data["state"] == "Approved"
    assert data["appSessionId"] == "s1"
    assert data["offer"]["providerId"] == draft["issuerId"]
    assert data["offer"]["offerId"] == draft["proposalId"]
    # As yagna: the demand subscription's id, which clients use to find the agreement's
    # demand (not the id of our counter-proposal).
    assert data["demand"]["demandId"] == demand_id
    assert data["demand"]["demandId"] != draft["prevProposalId"]
    assert "approvedDate" in data
    listed = await api.ok("GET", f"{MARKET}/agreements", params={"appSessionId": "s1"})
    assert [entry["id"] for entry in listed] == [agreement_id]

    reason = {"message": "work done", "golem.requestor.code": "Success"}
    assert (await api.call("POST", path + "/terminate", json_body=reason))[0] == 204
    status, body = await api.call("POST", path + "/terminate", json_body=reason)
    assert status == 410
    assert "from Approving" not in body["message"] and "from Pending" not in body["message"]
    assert (await api.ok("GET", path))["state"] == "Terminated"
    terminated = await api.ok("POST", path + "/terminate/reason")
    assert terminated["terminator"] == "Requestor"
    assert terminated["reason"] == reason

    events = await api.ok(
        "GET",
        f"{MARKET}/agreementEvents",
        params={"afterTimestamp": before, "appSessionId": "s1", "timeout": 1},
    )
    assert [e["eventType"] for e in events] == [
        "AgreementApprovedEvent",
        "AgreementTerminatedEvent",
    ]
    assert all(e["agreementId"] == agreement_id for e in events)
    assert events[1]["reason"] == reason
    later = await api.ok(
        "GET",
        f"{MARKET}/agreementEvents",
        params={"afterTimestamp": events[-1]["eventDate"], "appSessionId": "s1", "timeout": 0},
    )
    assert later == []


async def test_refusals(api) -> None:
    _, draft = await _draft(api)
    body = {"proposalId": draft["proposalId"], "validTo": _in(60)}
    initial = (await offers(api, await subscribe(api)))[0]
    status, message = await api.call(
        "POST", f"{MARKET}/agreements", json_body={**body, "proposalId": initial["proposalId"]}
    )
    assert status == 409 and "No negotiation" in message["message"]
    status, _ = await api.call(
        "POST", f"{MARKET}/agreements", json_body={**body, "proposalId": draft["prevProposalId"]}
    )
    assert status == 400  # our own proposal
    status, _ = await api.call(
        "POST", f"{MARKET}/agreements", json_body={**body, "validTo": _in(-5)}
    )
    assert status == 400
    assert (await api.call("POST", f"{MARKET}/agreements", json_body=body))[0] == 201
    assert (await api.call("POST", f"{MARKET}/agreements", json_body=body))[0] == 409
    status, _ = await api.call(
        "POST", f"{MARKET}/agreements", json_body={**body, "proposalId": "P-unknown"}
    )
    assert status == 400  # as yagna: "Can't create Agreement for Proposal [...]"
    assert (await api.call("GET", f"{MARKET}/agreements/unknown"))[0] == 404


async def test_cancel(api) -> None:
    _, draft = await _draft(api, "silent")
    agreement_id = await api.ok(
        "POST",
        f"{MARKET}/agreements",
        json_body={"proposalId": draft["proposalId"], "validTo": _in(60)},
    )
    path = f"{MARKET}/agreements/{agreement_id}"
    await api.ok("POST", path + "/confirm")
    assert (await api.call("POST", path + "/cancel", json_body={"message": "changed mind"}))[
        0
    ] == 204
    status, body = await api.call("POST", path + "/wait", params={"timeout": 1})
    assert status == 410 and body["message"].startswith("Cancelled")
    assert (await api.call("POST", path + "/cancel"))[0] == 410


async def test_provider_rejects_agreement(api) -> None:
    agreement_id, _, _ = await agreement(api, "rejectagr", approve=False)
    path = f"{MARKET}/agreements/{agreement_id}"
    status, body = await api.call("POST", path + "/wait", params={"timeout": 5})
    assert status == 410 and body["message"].startswith("Rejected")
    assert "reject_agreement" in body["message"]
    assert (await api.ok("GET", path))["state"] == "Rejected"


async def test_provider_that_never_answers_lets_it_expire(api, start_devnet, http) -> None:
    from golem_tasks.devnet.profile import Faults, Group, Profile, ProviderSpec

    profile = Profile(
        (Group(1, ProviderSpec(name="silent", faults=Faults(agreement_timeout=1.0))),)
    )
    # 60 s of validity pass in 0.3 s.
    async with start_devnet(profile=profile, time_scale=200) as net:
        fast = Api(http, net.api_url, net.app_key)
        agreement_id, _, _ = await agreement(fast, approve=False)
        path = f"{MARKET}/agreements/{agreement_id}"
        assert (await fast.call("POST", path + "/wait", params={"timeout": 0.05}))[0] == 408
        status, body = await fast.call("POST", path + "/wait", params={"timeout": 5})
        assert status == 410 and "expired" in body["message"]
        assert (await fast.ok("GET", path))["state"] == "Expired"


async def test_agreement_expires_at_demand_expiration(api, start_devnet, http) -> None:
    async with start_devnet(providers=1, time_scale=600) as net:
        fast = Api(http, net.api_url, net.app_key)
        # golem.srv.comp.expiration 30 min ahead = 3 s here; the provider then terminates.
        agreement_id, _, _ = await agreement(fast)
        path = f"{MARKET}/agreements/{agreement_id}"
        for _ in range(60):
            if (await fast.ok("GET", path))["state"] == "Terminated":
                break
            await _sleep(0.1)
        reason = await fast.ok("POST", path + "/terminate/reason")
        assert reason["terminator"] == "Provider"
        assert reason["reason"]["message"] == "Agreement expired"


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


async def test_timestamps_are_read_in_utc_and_absurd_ones_refused(api, devnet) -> None:
    """A validTo with an offset is converted to UTC; one beyond what a date can hold after
    conversion is a 400, not an agreement that answers 500 ever after."""
    for absurd in ("9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00"):
        _, draft = await _draft(api)
        status, body = await api.call(
            "POST",
            f"{MARKET}/agreements",
            json_body={"proposalId": draft["proposalId"], "validTo": absurd},
        )
        assert status == 400 and "validTo" in body["message"], (absurd, status, body)
    _, draft = await _draft(api)
    agreement_id = await api.ok(
        "POST",
        f"{MARKET}/agreements",
        json_body={"proposalId": draft["proposalId"], "validTo": "8999-12-31T23:59:59-05:00"},
    )
    path = f"{MARKET}/agreements/{agreement_id}"
    assert (await api.ok("GET", path))["validTo"] == "9000-01-01T04:59:59.000000Z"
    await api.ok("POST", path + "/confirm", params={"appSessionId": "far"})
    await api.ok("POST", path + "/wait", params={"timeout": 5})
    assert (await api.ok("GET", path))["state"] == "Approved"
    await api.ok("POST", path + "/terminate", json_body={"message": "done"})
    assert (await api.ok("GET", path))["state"] == "Terminated"
    listed = await api.ok("GET", f"{MARKET}/agreements", params={"appSessionId": "far"})
    assert [entry["id"] for entry in listed] == [agreement_id]
    # The provider is free again and has invoiced the agreement.
    agreement = devnet.network.market.agreements[agreement_id]
    assert agreement_id not in agreement.provider.active_agreements
    invoices = devnet.network.payments.invoices.values()
    assert [i for i in invoices if i.agreement_id == agreement_id]


async def test_agreements_listed_by_timestamp_as_well(api) -> None:
    """afterTimestamp/beforeTimestamp work as well as the contract's afterDate/beforeDate."""
    before = datetime.now(timezone.utc).isoformat()
    agreement_id, _, _ = await agreement(api, session="listing")
    after = datetime.now(timezone.utc).isoformat()
    for params in (
        {"afterTimestamp": before, "beforeTimestamp": after},
        {"afterDate": before, "beforeDate": after},
    ):
        listed = await api.ok(
            "GET", f"{MARKET}/agreements", params={"appSessionId": "listing", **params}
        )
        assert [entry["id"] for entry in listed] == [agreement_id], params
    for params in ({"afterTimestamp": after}, {"beforeTimestamp": before}):
        listed = await api.ok(
            "GET", f"{MARKET}/agreements", params={"appSessionId": "listing", **params}
        )
        assert listed == [], params
    await api.ok("POST", f"{MARKET}/agreements/{agreement_id}/terminate", json_body={})
