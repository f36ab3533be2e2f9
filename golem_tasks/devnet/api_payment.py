"""Payment API routes (``/payment-api/v1``), requestor side."""

from __future__ import annotations

from aiohttp import web

from golem_tasks.devnet.clock import isoformat
from golem_tasks.devnet.errors import ApiError, NotFound
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


def _listing(request: web.Request, documents: list) -> list:
    after = query_timestamp(request, "afterTimestamp")
    max_items = query_int(request, "maxItems", 10, low=1, high=100)  # the contract's bounds
    assert max_items is not None
    return network(request).payments.listed(documents, after, max_items)


async def list_debit_notes(request: web.Request) -> web.Response:
    payments = network(request).payments
    notes = _listing(request, list(payments.debit_notes.values()))
    return respond([payments.debit_note_json(n) for n in notes])


async def get_debit_note(request: web.Request) -> web.Response:
    payments = network(request).payments
    return respond(payments.debit_note_json(payments.debit_note(request.match_info["note_id"])))


async def accept_debit_note(request: web.Request) -> web.Response:
    payments = network(request).payments
    note = payments.debit_note(request.match_info["note_id"])
    query_timeout(request)
    payments.accept_debit_note(note.id, await body_object(request))
    return respond(None)


async def reject_debit_note(request: web.Request) -> web.Response:
    if not network(request).debit_note_rejection:
        raise ApiError("Not implemented", status=501)
    payments = network(request).payments
    note = payments.debit_note(request.match_info["note_id"])
    query_timeout(request)
    payments.reject(note, await body_object(request))
    return respond(None)


async def debit_note_payments(request: web.Request) -> web.Response:
    payments = network(request).payments
    note = payments.debit_note(request.match_info["note_id"])
    return respond(_document_payments(request, note.payments))


async def debit_note_events(request: web.Request) -> web.Response:
    return await _events(request, network(request).payments.debit_note_events)


async def list_invoices(request: web.Request) -> web.Response:
    payments = network(request).payments
    invoices = _listing(request, list(payments.invoices.values()))
    return respond([payments.invoice_json(i) for i in invoices])


async def get_invoice(request: web.Request) -> web.Response:
    payments = network(request).payments
    return respond(payments.invoice_json(payments.invoice(request.match_info["invoice_id"])))


async def accept_invoice(request: web.Request) -> web.Response:
    payments = network(request).payments
    invoice = payments.invoice(request.match_info["invoice_id"])
    query_timeout(request)
    payments.accept_invoice(invoice.id, await body_object(request))
    return respond(None)


async def reject_invoice(request: web.Request) -> web.Response:
    payments = network(request).payments
    invoice = payments.invoice(request.match_info["invoice_id"])
    query_timeout(request)
    payments.reject(invoice, await body_object(request))
    return respond(None)


async def invoice_payments(request: web.Request) -> web.Response:
    payments = network(request).payments
    invoice = payments.invoice(request.match_info["invoice_id"])
    return respond(_document_payments(request, invoice.payments))


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


async def invoice_events(request: web.Request) -> web.Response:
    return await _events(request, network(request).payments.invoice_events)


async def list_payments(request: web.Request) -> web.Response:
    return await _events(request, network(request).payments.payments)


async def _events(request: web.Request, log) -> web.Response:
    timeout = query_timeout(request)
    max_events = query_max_events(request)
    after = query_timestamp(request, "afterTimestamp")
    return respond(await log.poll(after, request.query.get("appSessionId"), max_events, timeout))


def routes() -> list[web.RouteDef]:
    p = PREFIX
    allocation = p + "/allocations/{allocation_id}"
    note = p + "/debitNotes/{note_id}"
    invoice = p + "/invoices/{invoice_id}"
    return [
        web.get(p + "/requestorAccounts", requestor_accounts),
        web.get(p + "/demandDecorations", demand_decorations),
        web.post(p + "/allocations", create_allocation),
        web.get(p + "/allocations", list_allocations),
        web.get(allocation, get_allocation),
        web.put(allocation, amend_allocation),
        web.delete(allocation, release_allocation),
        web.get(p + "/debitNotes", list_debit_notes),
        web.get(note, get_debit_note),
        web.post(note + "/accept", accept_debit_note),
        web.post(note + "/reject", reject_debit_note),
        web.get(note + "/payments", debit_note_payments),
        web.get(p + "/debitNoteEvents", debit_note_events),
        web.get(p + "/invoices", list_invoices),
        web.get(invoice, get_invoice),
        web.post(invoice + "/accept", accept_invoice),
        web.post(invoice + "/reject", reject_invoice),
        web.get(invoice + "/payments", invoice_payments),
        web.get(p + "/invoiceEvents", invoice_events),
        web.get(p + "/payments", list_payments),
        web.get(p + "/payments/status", payments_status),
    ]
