"""Market API: demands, long-polling, matching in both directions, negotiation, rejection."""

from __future__ import annotations

import time

from tests.devnet.flows import MARKET, PLATFORM, counter, events, offers, subscribe

PROVIDER_PROPERTIES = (
    "golem.node.id.name",
    "golem.inf.cpu.threads",
    "golem.inf.mem.gib",
    "golem.inf.storage.gib",
    "golem.runtime.name",
    "golem.com.pricing.model",
    "golem.com.pricing.model.linear.coeffs",
    "golem.com.usage.vector",
    f"golem.com.payment.platform.{PLATFORM}.address",
    "golem.node.debug.subnet",
    "golem.com.scheme.payu.debit-note.interval-sec?",
    "golem.com.scheme.payu.payment-timeout-sec?",
)


async def test_subscribe_list_unsubscribe(api) -> None:
    demand_id = await subscribe(api)
    listed = await api.ok("GET", f"{MARKET}/demands")
    demand = next(d for d in listed if d["demandId"] == demand_id)
    assert demand["constraints"].startswith("(&(golem.node.debug.subnet=public)")
    assert demand["requestorId"] == (await api.ok("GET", "/me"))["identity"]

    assert (await api.call("DELETE", f"{MARKET}/demands/{demand_id}"))[0] == 204
    assert demand_id not in [d["demandId"] for d in await api.ok("GET", f"{MARKET}/demands")]
    # yagna 0.17.6 answers a second unsubscribe 404 "Demand [...] not found." (the
    # contract's bodiless 410 is not what it sends).
    status, body = await api.call("DELETE", f"{MARKET}/demands/{demand_id}")
    assert status == 404 and body["message"] == f"Demand [{demand_id}] not found."
    status, body = await api.call("GET", f"{MARKET}/demands/{demand_id}/events")
    assert status == 404 and "message" in body
    assert (await api.call("DELETE", f"{MARKET}/demands/nope"))[0] == 404


async def test_one_initial_proposal_per_matching_provider(api) -> None:
    demand_id = await subscribe(api)
    found = await offers(api, demand_id)
    names = sorted(p["properties"]["golem.node.id.name"] for p in found)
    assert names == [f"healthy-{i}" for i in range(1, 7)]
    for proposal in found:
        assert proposal["state"] == "Initial"
        assert "prevProposalId" not in proposal
        assert proposal["issuerId"].startswith("0x") and len(proposal["issuerId"]) == 42
        for key in PROVIDER_PROPERTIES:
            assert key in proposal["properties"], key
        props = proposal["properties"]
        assert len(props["golem.com.pricing.model.linear.coeffs"]) == 3
        assert props["golem.com.usage.vector"] == [
            "golem.usage.cpu_sec",
            "golem.usage.duration_sec",
        ]
        # The provider's own constraints are sent along, in golem-core's grammar.
        assert "golem.node.debug.subnet=public" in proposal["constraints"]


async def test_demand_constraints_select_providers(api) -> None:
    # Only the one 64 GiB provider (subnet "bigmem") has that much memory.
    for subnet, constraint, expected in (
        ("bigmem", "(&(golem.inf.mem.gib>=64)(golem.inf.cpu.threads>16))", 1),
        ("bigmem", "(&(golem.inf.mem.gib>64))", 0),
        ("public", "(|(golem.inf.mem.gib<8)(golem.inf.cpu.threads<=2))", 0),
        ("public", "(&(golem.node.id.name=healthy-*)(!(golem.node.id.name=healthy-1)))", 5),
        ("public", "(&(golem.runtime.name=vm)(golem.com.pricing.model=*))", 6),
        ("public", "(golem.node.debug.subnet=elsewhere)", 0),
    ):
        demand_id = await subscribe(api, subnet, constraints=constraint)
        assert len(await offers(api, demand_id)) == expected, constraint


async def test_offer_constraints_must_hold_for_the_demand(api) -> None:
    # Providers require golem.srv.comp.expiration and their own subnet in the demand.
    demand_id = await subscribe(api, properties={"golem.srv.comp.expiration": None})
    assert await offers(api, demand_id) == []
    demand_id = await subscribe(
        api, properties={"golem.node.debug.subnet": "other"}, constraints="(golem.runtime.name=vm)"
    )
    assert await offers(api, demand_id) == []


async def test_collect_long_polls_and_honours_max_events(api) -> None:
    demand_id = await subscribe(api)
    first = await events(api, demand_id, timeout=1, max_events=4)
    assert len(first) == 4
    rest = await events(api, demand_id, timeout=1, max_events=100)
    assert len(rest) == 2
    started = time.monotonic()
    assert await events(api, demand_id, timeout=0.6) == []
    assert 0.5 < time.monotonic() - started < 3
    status, body = await api.call(
        "GET", f"{MARKET}/demands/{demand_id}/events", params={"maxEvents": 0}
    )
    assert status == 400 and "maxEvents" in body["message"]


async def test_counter_proposal_and_provider_reply(api) -> None:
    demand_id = await subscribe(api)
    offer = (await offers(api, demand_id))[0]
    ours, answer = await counter(api, demand_id, offer)
    assert answer["eventType"] == "ProposalEvent"
    draft = answer["proposal"]
    assert draft["state"] == "Draft"
    assert draft["prevProposalId"] == ours
    assert draft["issuerId"] == offer["issuerId"]
    mine = await api.ok("GET", f"{MARKET}/demands/{demand_id}/proposals/{ours}")
    assert mine["state"] == "Draft" and mine["prevProposalId"] == offer["proposalId"]
    # A proposal can be countered once; our own proposal cannot be countered at all.
    body = {"properties": {}, "constraints": "(&)"}
    status, _ = await api.call(
        "POST", f"{MARKET}/demands/{demand_id}/proposals/{offer['proposalId']}", json_body=body
    )
    assert status == 410
    status, _ = await api.call(
        "POST", f"{MARKET}/demands/{demand_id}/proposals/{ours}", json_body=body
    )
    assert status == 400


async def test_mid_agreement_payment_terms_are_negotiated(api) -> None:
    demand_id = await subscribe(api)
    offer = (await offers(api, demand_id))[0]
    terms = {
        "golem.com.scheme.payu.debit-note.interval-sec?": 600,
        "golem.com.scheme.payu.payment-timeout-sec?": 86400,
    }
    _, answer = await counter(api, demand_id, offer, terms)
    for key, value in terms.items():
        assert answer["proposal"]["properties"][key] == value


async def test_provider_drops_terms_not_asked_for(api) -> None:
    demand_id = await subscribe(api)
    offer = (await offers(api, demand_id))[0]
    _, answer = await counter(api, demand_id, offer)
    props = answer["proposal"]["properties"]
    assert "golem.com.scheme.payu.debit-note.interval-sec?" not in props
    assert "golem.com.scheme.payu.payment-timeout-sec?" not in props


async def test_provider_rejects_proposal(api) -> None:
    demand_id = await subscribe(api, "rejectprop")
    offer = (await offers(api, demand_id))[0]
    ours, answer = await counter(api, demand_id, offer)
    assert answer["eventType"] == "ProposalRejectedEvent"
    assert answer["proposalId"] == ours
    assert "reject_proposal" in answer["reason"]["message"]
    mine = await api.ok("GET", f"{MARKET}/demands/{demand_id}/proposals/{ours}")
    assert mine["state"] == "Rejected"


async def test_requestor_rejects_proposal(api) -> None:
    demand_id = await subscribe(api)
    offer = (await offers(api, demand_id))[0]
    path = f"{MARKET}/demands/{demand_id}/proposals/{offer['proposalId']}"
    assert (await api.call("POST", path + "/reject", json_body={"message": "no"}))[0] == 204
    assert (await api.ok("GET", path))["state"] == "Rejected"
    assert (await api.call("POST", path + "/reject", json_body={"message": "no"}))[0] == 410
    status, _ = await api.call("POST", path, json_body={"properties": {}, "constraints": "(&)"})
    assert status == 410
    assert (await api.call("GET", f"{MARKET}/demands/{demand_id}/proposals/nope"))[0] == 404


async def test_demand_expires_on_the_fast_clock(api, start_devnet, http) -> None:
    from tests.devnet.flows import Api

    async with start_devnet(providers=1, time_scale=3600 / 0.5) as net:
        fast = Api(http, net.api_url, net.app_key)
        demand_id = await subscribe(fast)
        assert len(await offers(fast, demand_id)) == 1
        await _sleep(0.8)  # the 1 h subscription lifetime lasts 0.5 s here
        status, body = await fast.call("GET", f"{MARKET}/demands/{demand_id}/events")
        assert status == 404 and "expired" in body["message"]
        assert demand_id not in [d["demandId"] for d in await fast.ok("GET", f"{MARKET}/demands")]
        assert (await fast.call("DELETE", f"{MARKET}/demands/{demand_id}"))[0] == 410


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)
