"""Market API routes (``/market-api/v1``), requestor side."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from aiohttp import web

from golem_tasks.devnet.clock import parse_timestamp
from golem_tasks.devnet.errors import BadRequest, Gone
from golem_tasks.devnet.rest import (
    body_json,
    body_object,
    network,
    no_content,
    query_error,
    query_max_events,
    query_timeout,
    query_timestamp,
    reason_body,
    respond,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PREFIX = "/market-api/v1"
AGREEMENT_STATES = frozenset(
    {"Proposal", "Pending", "Cancelled", "Rejected", "Approved", "Expired", "Terminated"}
)
MAX_APPROVAL_WAIT = 15.0


def bare_gone(handler: Handler) -> Handler:
    """The contract documents some 410 answers without a body; send none there."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except Gone:
            return web.Response(status=410)

    return wrapper


def _demand_offer(data: dict) -> tuple[dict, str]:
    properties = data.get("properties")
    constraints = data.get("constraints")
    if not isinstance(properties, dict):
        raise BadRequest("Json deserialize error: missing field `properties` (an object)")
    if not isinstance(constraints, str):
        raise BadRequest("Json deserialize error: missing field `constraints` (a string)")
    return properties, constraints


async def subscribe_demand(request: web.Request) -> web.Response:
    properties, constraints = _demand_offer(await body_object(request))
    demand = network(request).market.subscribe(properties, constraints)
    return respond(demand.id, status=201)


async def get_demands(request: web.Request) -> web.Response:
    return respond([d.to_json() for d in network(request).market.active_demands()])


@bare_gone
async def unsubscribe_demand(request: web.Request) -> web.Response:
    network(request).market.unsubscribe(request.match_info["subscription_id"])
    return no_content()


async def collect_offers(request: web.Request) -> web.Response:
    timeout = query_timeout(request)
    max_events = query_max_events(request)
    events = await network(request).market.collect(
        request.match_info["subscription_id"], timeout, max_events
    )
    return respond(events)


@bare_gone
async def get_proposal(request: web.Request) -> web.Response:
    proposal = network(request).market.proposal(
        request.match_info["subscription_id"], request.match_info["proposal_id"]
    )
    return respond(proposal.to_json())


@bare_gone
async def counter_proposal(request: web.Request) -> web.Response:
    net = network(request)
    subscription_id = request.match_info["subscription_id"]
    proposal_id = request.match_info["proposal_id"]
    properties, constraints = _demand_offer(await body_object(request))
    offer = net.market.proposal(subscription_id, proposal_id)
    await net.gate(offer.provider, "counter")
    ours = net.market.counter(subscription_id, proposal_id, properties, constraints)
    return respond(ours.id, status=201)


@bare_gone
async def reject_proposal(request: web.Request) -> web.Response:
    reason = reason_body(await body_json(request, required=False))
    network(request).market.reject(
        request.match_info["subscription_id"], request.match_info["proposal_id"], reason
    )
    return no_content()


async def create_agreement(request: web.Request) -> web.Response:
    data = await body_object(request)
    proposal_id = data.get("proposalId")
    valid_to = data.get("validTo")
    if not isinstance(proposal_id, str) or not proposal_id:
        raise BadRequest("Json deserialize error: missing field `proposalId`")
    if not isinstance(valid_to, str):
        raise BadRequest("Json deserialize error: missing field `validTo`")
    try:
        valid_to_time = parse_timestamp(valid_to)
    except ValueError as exc:
        raise BadRequest(
            f"Invalid date. validTo is not a usable RFC 3339 date-time: {exc}"
        ) from None
    agreement = network(request).market.create_agreement(proposal_id, valid_to_time)
    return respond(agreement.id, status=201)


async def list_agreements(request: web.Request) -> web.Response:
    state = request.query.get("state")
    if state is not None and state not in AGREEMENT_STATES:
        raise query_error(f"unknown agreement state {state!r}")
    # The contract names them afterDate/beforeDate beside a $ref to afterTimestamp/
    # beforeTimestamp (whose name wins in OpenAPI 3.0): take either.
    entries = network(request).market.list_agreements(
        request.query.get("appSessionId"),
        state,
        query_timestamp(request, "afterDate") or query_timestamp(request, "afterTimestamp"),
        query_timestamp(request, "beforeDate") or query_timestamp(request, "beforeTimestamp"),
    )
    return respond(entries)


async def get_agreement(request: web.Request) -> web.Response:
    agreement = network(request).market.agreement(request.match_info["agreement_id"])
    return respond(agreement.to_json())


async def confirm_agreement(request: web.Request) -> web.Response:
    net = network(request)
    agreement = net.market.agreement(request.match_info["agreement_id"])
    await net.gate(agreement.provider, "confirm")
    net.market.confirm(agreement.id, request.query.get("appSessionId"))
    return no_content()


async def wait_for_approval(request: web.Request) -> web.Response:
    timeout = query_timeout(request, cap=MAX_APPROVAL_WAIT)
    await network(request).market.wait_for_approval(request.match_info["agreement_id"], timeout)
    return no_content()


async def cancel_agreement(request: web.Request) -> web.Response:
    reason = reason_body(await body_json(request, required=False))
    network(request).market.cancel(request.match_info["agreement_id"], reason)
    return no_content()


async def terminate_agreement(request: web.Request) -> web.Response:
    net = network(request)
    reason = reason_body(await body_json(request, required=False))
    agreement = net.market.agreement(request.match_info["agreement_id"])
    if agreement.state == "Approved":
        await net.gate(agreement.provider, "terminate")
    net.market.terminate(agreement.id, reason)
    return no_content()


async def termination_reason(request: web.Request) -> web.Response:
    return respond(network(request).market.termination_reason(request.match_info["agreement_id"]))


async def agreement_events(request: web.Request) -> web.Response:
    timeout = query_timeout(request)
    max_events = query_max_events(request)
    after = query_timestamp(request, "afterTimestamp")
    events = await network(request).market.agreement_events.poll(
        after, request.query.get("appSessionId"), max_events, timeout
    )
    return respond(events)


def routes() -> list[web.RouteDef]:
    p = PREFIX
    sub = p + "/demands/{subscription_id}"
    agreement = p + "/agreements/{agreement_id}"
    return [
        web.post(p + "/demands", subscribe_demand),
        web.get(p + "/demands", get_demands),
        web.delete(sub, unsubscribe_demand),
        web.get(sub + "/events", collect_offers),
        web.get(sub + "/proposals/{proposal_id}", get_proposal),
        web.post(sub + "/proposals/{proposal_id}", counter_proposal),
        web.post(sub + "/proposals/{proposal_id}/reject", reject_proposal),
        web.post(p + "/agreements", create_agreement),
        web.get(p + "/agreements", list_agreements),
        web.get(agreement, get_agreement),
        web.post(agreement + "/confirm", confirm_agreement),
        web.post(agreement + "/wait", wait_for_approval),
        web.post(agreement + "/cancel", cancel_agreement),
        web.post(agreement + "/terminate", terminate_agreement),
        web.post(agreement + "/terminate/reason", termination_reason),
        web.get(p + "/agreementEvents", agreement_events),
    ]
