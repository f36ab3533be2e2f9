"""Payment API routes (``/payment-api/v1``), requestor side."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from golem_tasks.devnet.clock import isoformat
from golem_tasks.devnet.errors import ApiError, NotFound
from golem_tasks.devnet.events import EventLog
from golem_tasks.devnet.payment import DEBIT_NOTE, INVOICE, Document, Kind
from golem_tasks.devnet.rest import (
    body_error,
    body_object,
    network,
    query_error,
    query_int,
    query_max_events,
    query_timeout,
    query_timestamp,
    respond,
)

PREFIX = "/payment-api/v1"


async def requestor_accounts(request: web.Request) -> web.Response:
    return respond(network(request).payments.accounts())


async def demand_decorations(request: web.Request) -> web.Response:
    ids = [
        part.strip()
        for value in request.query.getall("allocationIds", [])
        for part in value.split(",")
        if part.strip()
    ]
    if not ids:
        raise query_error("missing field `allocationIds`")
    return respond(network(request).payments.decorations(ids))


async def create_allocation(request: web.Request) -> web.Response:
    data = await body_object(request)
    if "totalAmount" not in data:
        raise body_error(request, "Json deserialize error: missing field `totalAmount`")
    allocation = network(request).payments.create_allocation(data)
    return respond(allocation.to_json(), status=201)


async def list_allocations(request: web.Request) -> web.Response:
    return respond([a.to_json() for a in network(request).payments.list_allocations()])


async def get_allocation(request: web.Request) -> web.Response:
    allocation = network(request).payments.allocation(request.match_info["allocation_id"])
    return respond(allocation.to_json())


async def amend_allocation(request: web.Request) -> web.Response:
    payments = network(request).payments
    allocation_id = request.match_info["allocation_id"]
    payments.allocation(allocation_id)
    allocation = payments.amend_allocation(allocation_id, await body_object(request))
    return respond(allocation.to_json())


async def release_allocation(request: web.Request) -> web.Response:
    network(request).payments.release_allocation(request.match_info["allocation_id"])
    return respond(None)


@dataclass(frozen=True)
class _DocumentRoutes:
    """Where a kind of payment document lives in the API, and how it differs there."""

    kind: Kind
    path: str
    events_path: str
    #: Rejecting it can be switched off (yagna 0.17.6 does not implement it for debit notes).
    rejection_switchable: bool


_DOCUMENTS = (
    _DocumentRoutes(DEBIT_NOTE, "/debitNotes", "/debitNoteEvents", rejection_switchable=True),
    _DocumentRoutes(INVOICE, "/invoices", "/invoiceEvents", rejection_switchable=False),
)


def _document_routes(where: _DocumentRoutes) -> list[web.RouteDef]:
    """List, get, accept, reject, payments and events of one kind of document."""
    kind = where.kind

    def document(request: web.Request) -> Document:
        return network(request).payments.document(kind, request.match_info["document_id"])

    async def list_documents(request: web.Request) -> web.Response:
        after = query_timestamp(request, "afterTimestamp")
        max_items = query_int(request, "maxItems", 10, low=1, high=100)  # the contract's bounds
        assert max_items is not None
        payments = network(request).payments
        listed = payments.listed(kind, after, max_items)
        return respond([payments.document_json(d) for d in listed])

    async def get_document(request: web.Request) -> web.Response:
        return respond(network(request).payments.document_json(document(request)))

    async def accept(request: web.Request) -> web.Response:
        found = document(request)
        query_timeout(request)
        network(request).payments.accept(found, await body_object(request))
        return respond(None)

    async def reject(request: web.Request) -> web.Response:
        if where.rejection_switchable and not network(request).debit_note_rejection:
            raise ApiError("Not implemented", status=501)
        found = document(request)
        query_timeout(request)
        network(request).payments.reject(found, await body_object(request))
        return respond(None)

    async def document_payments(request: web.Request) -> web.Response:
        return respond(_document_payments(request, document(request).payments))

    async def events(request: web.Request) -> web.Response:
        return await _events(request, network(request).payments.events[kind])

    one = PREFIX + where.path + "/{document_id}"
    return [
        web.get(PREFIX + where.path, list_documents),
        web.get(one, get_document),
        web.post(one + "/accept", accept),
        web.post(one + "/reject", reject),
        web.get(one + "/payments", document_payments),
        web.get(PREFIX + where.events_path, events),
    ]


def _document_payments(request: web.Request, found: list[dict]) -> list[dict]:
    after = query_timestamp(request, "afterTimestamp")
    max_items = query_int(request, "maxItems", 10, low=1, high=100)
    assert max_items is not None
    if after is not None:
        after_text = isoformat(after)  # same format, so the text order is the time order
        found = [p for p in found if p["timestamp"] > after_text]
    return found[:max_items]


async def payments_status(request: web.Request) -> web.Response:
    """Status problems of the payment driver: the devnet's never has any."""
    payments = network(request).payments
    for name, own in (("network", payments.platform.network), ("driver", payments.platform.driver)):
        asked = request.query.get(name)
        if asked is not None and asked.lower() != own:
            raise NotFound(f"Payment {name} {asked} is not configured on this node")
    return respond([])


async def list_payments(request: web.Request) -> web.Response:
    return await _events(request, network(request).payments.payments)


async def _events(request: web.Request, log: EventLog) -> web.Response:
    timeout = query_timeout(request)
    max_events = query_max_events(request)
    after = query_timestamp(request, "afterTimestamp")
    return respond(await log.poll(after, request.query.get("appSessionId"), max_events, timeout))


def routes() -> list[web.RouteDef]:
    p = PREFIX
    allocation = p + "/allocations/{allocation_id}"
    return [
        web.get(p + "/requestorAccounts", requestor_accounts),
        web.get(p + "/demandDecorations", demand_decorations),
        web.post(p + "/allocations", create_allocation),
        web.get(p + "/allocations", list_allocations),
        web.get(allocation, get_allocation),
        web.put(allocation, amend_allocation),
        web.delete(allocation, release_allocation),
        *(route for where in _DOCUMENTS for route in _document_routes(where)),
        web.get(p + "/payments", list_payments),
        web.get(p + "/payments/status", payments_status),
    ]
