"""The requests of the conformance suite, run alike against yagna and against the devnet.

One list, one runner: ``record_yagna`` runs it against the real daemon and stores what it
answered; ``test_conformance`` runs it against a devnet and compares. A case's answer is
kept as its status, content type and *shape* (field names and JSON types, not values), so
a recording stays valid across runs. Only what an offline requestor node can answer is
here: no provider means no proposal, agreement, activity or payment document, so those
are asked about with unknown and malformed ids.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

MARKET = "/market-api/v1"
ACTIVITY = "/activity-api/v1"
PAYMENT = "/payment-api/v1"

#: The request had no JSON body (``Case.body``).
NO_BODY: Any = object()
#: Status recorded when the server did not answer within ``REQUEST_TIMEOUT_S``.
NO_ANSWER = 0
REQUEST_TIMEOUT_S = 20.0

# Ids of things that do not exist, in the forms yagna uses (and one malformed form).
UNKNOWN = {
    "demand": "0123456789abcdef0123456789abcdef-" + "0123456789abcdef" * 4,
    "proposal": "P-" + "f" * 64,
    "agreement": "e" * 64,
    "activity": "d" * 32,
    "batch": "c" * 32,
    "allocation": "00000000-0000-4000-8000-000000000001",
    "debit_note": "00000000-0000-4000-8000-000000000002",
    "invoice": "00000000-0000-4000-8000-000000000003",
    "malformed": "not-an-id",
}
PLATFORM = "erc20-holesky-tglm"


@dataclass(frozen=True)
class Case:
    """One request. ``path``, ``query`` and ``body`` may name ``{placeholders}``: the
    unknown ids above, ``expiration`` (ms, 30 min ahead) and values saved by earlier
    cases (``save``: the response body, a string id)."""

    name: str
    method: str
    path: str
    auth: str = "key"  # "key", "none" (no Authorization) or "bad" (a wrong key)
    query: dict[str, str] = field(default_factory=dict)
    body: Any = NO_BODY
    raw_body: bytes | None = None  # sent as is, with a JSON content type
    save: str | None = None


def _demand_body() -> dict[str, Any]:
    return {
        "properties": {
            "golem.srv.comp.expiration": "{expiration}",
            "golem.node.debug.subnet": "conformance-nobody-here",
        },
        "constraints": "(golem.runtime.name=vm)",
    }


#: (case name stem, method, path) of every operation the devnet serves that yagna has;
#: each is also asked without an app key and with a wrong one.
OPERATIONS: list[tuple[str, str, str]] = [
    ("me", "GET", "/me"),
    ("version", "GET", "/version/get"),
    ("market.subscribe_demand", "POST", MARKET + "/demands"),
    ("market.get_demands", "GET", MARKET + "/demands"),
    ("market.unsubscribe_demand", "DELETE", MARKET + "/demands/{unknown_demand}"),
    ("market.collect_offers", "GET", MARKET + "/demands/{unknown_demand}/events"),
    (
        "market.get_proposal",
        "GET",
        MARKET + "/demands/{unknown_demand}/proposals/{unknown_proposal}",
    ),
    (
        "market.counter_proposal",
        "POST",
        MARKET + "/demands/{unknown_demand}/proposals/{unknown_proposal}",
    ),
    (
        "market.reject_proposal",
        "POST",
        MARKET + "/demands/{unknown_demand}/proposals/{unknown_proposal}/reject",
    ),
    ("market.create_agreement", "POST", MARKET + "/agreements"),
    ("market.list_agreements", "GET", MARKET + "/agreements"),
    ("market.get_agreement", "GET", MARKET + "/agreements/{unknown_agreement}"),
    ("market.confirm_agreement", "POST", MARKET + "/agreements/{unknown_agreement}/confirm"),
    ("market.wait_for_approval", "POST", MARKET + "/agreements/{unknown_agreement}/wait"),
    ("market.cancel_agreement", "POST", MARKET + "/agreements/{unknown_agreement}/cancel"),
    ("market.terminate_agreement", "POST", MARKET + "/agreements/{unknown_agreement}/terminate"),
    (
        "market.termination_reason",
        "POST",
        MARKET + "/agreements/{unknown_agreement}/terminate/reason",
    ),
    ("market.agreement_events", "GET", MARKET + "/agreementEvents"),
    ("activity.create", "POST", ACTIVITY + "/activity"),
    ("activity.list", "GET", ACTIVITY + "/activity"),
    ("activity.exec", "POST", ACTIVITY + "/activity/{unknown_activity}/exec"),
    ("activity.results", "GET", ACTIVITY + "/activity/{unknown_activity}/exec/{unknown_batch}"),
    ("activity.destroy", "DELETE", ACTIVITY + "/activity/{unknown_activity}"),
    ("activity.state", "GET", ACTIVITY + "/activity/{unknown_activity}/state"),
    ("activity.usage", "GET", ACTIVITY + "/activity/{unknown_activity}/usage"),
    ("activity.agreement", "GET", ACTIVITY + "/activity/{unknown_activity}/agreement"),
    ("activity.command", "GET", ACTIVITY + "/activity/{unknown_activity}/command"),
    ("payment.requestor_accounts", "GET", PAYMENT + "/requestorAccounts"),
    ("payment.demand_decorations", "GET", PAYMENT + "/demandDecorations"),
    ("payment.create_allocation", "POST", PAYMENT + "/allocations"),
    ("payment.list_allocations", "GET", PAYMENT + "/allocations"),
    ("payment.get_allocation", "GET", PAYMENT + "/allocations/{unknown_allocation}"),
    ("payment.amend_allocation", "PUT", PAYMENT + "/allocations/{unknown_allocation}"),
    ("payment.release_allocation", "DELETE", PAYMENT + "/allocations/{unknown_allocation}"),
    ("payment.list_debit_notes", "GET", PAYMENT + "/debitNotes"),
    ("payment.get_debit_note", "GET", PAYMENT + "/debitNotes/{unknown_debit_note}"),
    ("payment.accept_debit_note", "POST", PAYMENT + "/debitNotes/{unknown_debit_note}/accept"),
    ("payment.reject_debit_note", "POST", PAYMENT + "/debitNotes/{unknown_debit_note}/reject"),
    (
        "payment.debit_note_payments",
        "GET",
        PAYMENT + "/debitNotes/{unknown_debit_note}/payments",
    ),
    ("payment.debit_note_events", "GET", PAYMENT + "/debitNoteEvents"),
    ("payment.list_invoices", "GET", PAYMENT + "/invoices"),
    ("payment.get_invoice", "GET", PAYMENT + "/invoices/{unknown_invoice}"),
    ("payment.accept_invoice", "POST", PAYMENT + "/invoices/{unknown_invoice}/accept"),
    ("payment.reject_invoice", "POST", PAYMENT + "/invoices/{unknown_invoice}/reject"),
    ("payment.invoice_payments", "GET", PAYMENT + "/invoices/{unknown_invoice}/payments"),
    ("payment.invoice_events", "GET", PAYMENT + "/invoiceEvents"),
    ("payment.list_payments", "GET", PAYMENT + "/payments"),
    ("payment.status", "GET", PAYMENT + "/payments/status"),
]

_ACCEPTANCE = {"totalAmountAccepted": "1", "allocationId": "{unknown_allocation}"}
_REJECTION = {"rejectionReason": "UNSOLICITED_SERVICE", "totalAmountAccepted": "0"}
_ALLOCATION = {
    "totalAmount": "1",
    "makeDeposit": False,
    "paymentPlatform": PLATFORM,
    "timeout": "2100-01-01T00:00:00Z",
}


def _key_cases() -> list[Case]:
    """With the app key: good, unknown and malformed input, in an order that needs it."""
    d = "/demands/{demand}"
    return [
        Case("me", "GET", "/me"),
        Case("version", "GET", "/version/get"),
        # market: a demand of our own (nobody offers anything offline)
        Case(
            "market.subscribe_demand",
            "POST",
            MARKET + "/demands",
            body=_demand_body(),
            save="demand",
        ),
        Case("market.subscribe_demand.no_body", "POST", MARKET + "/demands"),
        Case("market.subscribe_demand.not_json", "POST", MARKET + "/demands", raw_body=b"{nope"),
        Case(
            "market.subscribe_demand.no_constraints",
            "POST",
            MARKET + "/demands",
            body={"properties": {}},
        ),
        Case(
            "market.subscribe_demand.properties_list",
            "POST",
            MARKET + "/demands",
            body={"properties": [], "constraints": ""},
        ),
        Case("market.get_demands", "GET", MARKET + "/demands"),
        Case(
            "market.collect_offers",
            "GET",
            MARKET + d + "/events",
            query={"timeout": "0", "maxEvents": "5"},
        ),
        Case(
            "market.collect_offers.bad_timeout",
            "GET",
            MARKET + d + "/events",
            query={"timeout": "soon"},
        ),
        Case(
            "market.collect_offers.max_events_zero",
            "GET",
            MARKET + d + "/events",
            query={"timeout": "0", "maxEvents": "0"},
        ),
        Case(
            "market.collect_offers.max_events_huge",
            "GET",
            MARKET + d + "/events",
            query={"timeout": "0", "maxEvents": "1000"},
        ),
        Case("market.get_proposal.unknown", "GET", MARKET + d + "/proposals/{unknown_proposal}"),
        Case(
            "market.counter_proposal.unknown",
            "POST",
            MARKET + d + "/proposals/{unknown_proposal}",
            body=_demand_body(),
        ),
        Case(
            "market.counter_proposal.no_body", "POST", MARKET + d + "/proposals/{unknown_proposal}"
        ),
        Case(
            "market.reject_proposal.unknown",
            "POST",
            MARKET + d + "/proposals/{unknown_proposal}/reject",
            body={"message": "no"},
        ),
        Case("market.unsubscribe_demand", "DELETE", MARKET + d),
        Case("market.unsubscribe_demand.again", "DELETE", MARKET + d),
        Case(
            "market.collect_offers.unsubscribed",
            "GET",
            MARKET + d + "/events",
            query={"timeout": "0"},
        ),
        Case("market.unsubscribe_demand.unknown", "DELETE", MARKET + "/demands/{unknown_demand}"),
        Case(
            "market.unsubscribe_demand.malformed", "DELETE", MARKET + "/demands/{unknown_malformed}"
        ),
        Case(
            "market.collect_offers.unknown",
            "GET",
            MARKET + "/demands/{unknown_demand}/events",
            query={"timeout": "0"},
        ),
        Case(
            "market.collect_offers.malformed",
            "GET",
            MARKET + "/demands/{unknown_malformed}/events",
            query={"timeout": "0"},
        ),
        Case(
            "market.get_proposal.unknown_demand",
            "GET",
            MARKET + "/demands/{unknown_demand}/proposals/{unknown_proposal}",
        ),
        # agreements
        Case(
            "market.create_agreement.unknown_proposal",
            "POST",
            MARKET + "/agreements",
            body={"proposalId": "{unknown_proposal}", "validTo": "2100-01-01T00:00:00Z"},
        ),
        Case(
            "market.create_agreement.no_valid_to",
            "POST",
            MARKET + "/agreements",
            body={"proposalId": "{unknown_proposal}"},
        ),
        Case("market.create_agreement.not_json", "POST", MARKET + "/agreements", raw_body=b"[1,"),
        Case("market.list_agreements", "GET", MARKET + "/agreements"),
        Case(
            "market.list_agreements.bad_state",
            "GET",
            MARKET + "/agreements",
            query={"state": "Sleeping"},
        ),
        Case(
            "market.list_agreements.bad_date",
            "GET",
            MARKET + "/agreements",
            query={"afterDate": "yesterday"},
        ),
        Case("market.get_agreement.unknown", "GET", MARKET + "/agreements/{unknown_agreement}"),
        Case("market.get_agreement.malformed", "GET", MARKET + "/agreements/{unknown_malformed}"),
        Case(
            "market.confirm_agreement.unknown",
            "POST",
            MARKET + "/agreements/{unknown_agreement}/confirm",
        ),
        Case(
            "market.wait_for_approval.unknown",
            "POST",
            MARKET + "/agreements/{unknown_agreement}/wait",
            query={"timeout": "0"},
        ),
        Case(
            "market.cancel_agreement.unknown",
            "POST",
            MARKET + "/agreements/{unknown_agreement}/cancel",
            body={"message": "no"},
        ),
        Case(
            "market.terminate_agreement.unknown",
            "POST",
            MARKET + "/agreements/{unknown_agreement}/terminate",
            body={"message": "done"},
        ),
        Case(
            "market.termination_reason.unknown",
            "POST",
            MARKET + "/agreements/{unknown_agreement}/terminate/reason",
        ),
        Case("market.agreement_events", "GET", MARKET + "/agreementEvents", query={"timeout": "0"}),
        Case(
            "market.agreement_events.bad_timestamp",
            "GET",
            MARKET + "/agreementEvents",
            query={"timeout": "0", "afterTimestamp": "noon"},
        ),
        # activities
        Case(
            "activity.create.unknown_agreement",
            "POST",
            ACTIVITY + "/activity",
            body="{unknown_agreement}",
        ),
        Case(
            "activity.create.unknown_agreement_object",
            "POST",
            ACTIVITY + "/activity",
            body={"agreementId": "{unknown_agreement}"},
        ),
        Case("activity.create.number", "POST", ACTIVITY + "/activity", body=7),
        Case(
            "activity.create.malformed_agreement",
            "POST",
            ACTIVITY + "/activity",
            body="{unknown_malformed}",
        ),
        Case(
            "activity.list.unknown_agreement",
            "GET",
            ACTIVITY + "/activity",
            query={"agreementId": "{unknown_agreement}"},
        ),
        Case(
            "activity.exec.unknown",
            "POST",
            ACTIVITY + "/activity/{unknown_activity}/exec",
            body={"text": "[]"},
        ),
        Case(
            "activity.results.unknown",
            "GET",
            ACTIVITY + "/activity/{unknown_activity}/exec/{unknown_batch}",
            query={"timeout": "0"},
        ),
        Case("activity.destroy.unknown", "DELETE", ACTIVITY + "/activity/{unknown_activity}"),
        Case("activity.state.unknown", "GET", ACTIVITY + "/activity/{unknown_activity}/state"),
        Case("activity.usage.unknown", "GET", ACTIVITY + "/activity/{unknown_activity}/usage"),
        Case(
            "activity.agreement.unknown", "GET", ACTIVITY + "/activity/{unknown_activity}/agreement"
        ),
        Case("activity.command.unknown", "GET", ACTIVITY + "/activity/{unknown_activity}/command"),
        # payments
        Case("payment.requestor_accounts", "GET", PAYMENT + "/requestorAccounts"),
        Case(
            "payment.demand_decorations.unknown",
            "GET",
            PAYMENT + "/demandDecorations",
            query={"allocationIds": "{unknown_allocation}"},
        ),
        Case("payment.create_allocation.not_json", "POST", PAYMENT + "/allocations", raw_body=b"{"),
        Case(
            "payment.create_allocation.no_amount",
            "POST",
            PAYMENT + "/allocations",
            body={"makeDeposit": False},
        ),
        Case("payment.list_allocations", "GET", PAYMENT + "/allocations"),
        Case(
            "payment.get_allocation.unknown", "GET", PAYMENT + "/allocations/{unknown_allocation}"
        ),
        Case(
            "payment.amend_allocation.unknown",
            "PUT",
            PAYMENT + "/allocations/{unknown_allocation}",
            body={"totalAmount": "2"},
        ),
        Case(
            "payment.release_allocation.unknown",
            "DELETE",
            PAYMENT + "/allocations/{unknown_allocation}",
        ),
        Case("payment.list_debit_notes", "GET", PAYMENT + "/debitNotes"),
        Case(
            "payment.list_debit_notes.bad_max_items",
            "GET",
            PAYMENT + "/debitNotes",
            query={"maxItems": "many"},
        ),
        Case("payment.get_debit_note.unknown", "GET", PAYMENT + "/debitNotes/{unknown_debit_note}"),
        Case(
            "payment.accept_debit_note.unknown",
            "POST",
            PAYMENT + "/debitNotes/{unknown_debit_note}/accept",
            body=_ACCEPTANCE,
        ),
        Case(
            "payment.reject_debit_note.unknown",
            "POST",
            PAYMENT + "/debitNotes/{unknown_debit_note}/reject",
            body=_REJECTION,
        ),
        Case(
            "payment.debit_note_payments.unknown",
            "GET",
            PAYMENT + "/debitNotes/{unknown_debit_note}/payments",
        ),
        Case(
            "payment.debit_note_events", "GET", PAYMENT + "/debitNoteEvents", query={"timeout": "0"}
        ),
        Case(
            "payment.debit_note_events.bad_max_events",
            "GET",
            PAYMENT + "/debitNoteEvents",
            query={"timeout": "0", "maxEvents": "-1"},
        ),
        Case("payment.list_invoices", "GET", PAYMENT + "/invoices"),
        Case("payment.get_invoice.unknown", "GET", PAYMENT + "/invoices/{unknown_invoice}"),
        Case(
            "payment.accept_invoice.unknown",
            "POST",
            PAYMENT + "/invoices/{unknown_invoice}/accept",
            body=_ACCEPTANCE,
        ),
        Case(
            "payment.reject_invoice.unknown",
            "POST",
            PAYMENT + "/invoices/{unknown_invoice}/reject",
            body=_REJECTION,
        ),
        Case(
            "payment.invoice_payments.unknown",
            "GET",
            PAYMENT + "/invoices/{unknown_invoice}/payments",
        ),
        Case("payment.invoice_events", "GET", PAYMENT + "/invoiceEvents", query={"timeout": "0"}),
        Case("payment.list_payments", "GET", PAYMENT + "/payments", query={"timeout": "0"}),
        Case("payment.status", "GET", PAYMENT + "/payments/status"),
        Case(
            "payment.status.other_network",
            "GET",
            PAYMENT + "/payments/status",
            query={"network": "nowhere", "driver": "erc20"},
        ),
        Case("unknown_route", "GET", "/market-api/v1/nothing-here"),
    ]


def cases() -> list[Case]:
    """Every case, in the order they are run."""
    unauthenticated = [
        Case(f"{stem}.{label}", method, path, auth=auth)
        for stem, method, path in OPERATIONS
        for label, auth in (("no_key", "none"), ("bad_key", "bad"))
    ]
    return unauthenticated + _key_cases()


# ---------------------------------------------------------------------- running


@dataclass
class Answer:
    status: int
    content_type: str
    body: Any  # decoded JSON, text, or None for an empty body
    text: str


def fill(template: Any, values: dict[str, Any]) -> Any:
    """``template`` with its ``{placeholders}`` replaced (recursively in JSON values)."""
    if isinstance(template, str):
        whole = re.fullmatch(r"\{(\w+)\}", template)
        if whole and whole.group(1) in values:
            return values[whole.group(1)]
        return re.sub(r"\{(\w+)\}", lambda m: str(values.get(m.group(1), m.group(0))), template)
    if isinstance(template, dict):
        return {k: fill(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, values) for v in template]
    return template


def initial_values() -> dict[str, Any]:
    values: dict[str, Any] = {f"unknown_{k}": v for k, v in UNKNOWN.items()}
    values["expiration"] = int((time.time() + 1800) * 1000)
    return values


async def ask(
    session: aiohttp.ClientSession, base: str, app_key: str, case: Case, values: dict[str, Any]
) -> Answer:
    headers: dict[str, str] = {}
    if case.auth == "key":
        headers["Authorization"] = f"Bearer {app_key}"
    elif case.auth == "bad":
        headers["Authorization"] = "Bearer not-the-app-key"
    data: bytes | None = None
    if case.raw_body is not None:
        data = case.raw_body
    elif case.body is not NO_BODY:
        data = json.dumps(fill(case.body, values)).encode()
    if data is not None:
        headers["Content-Type"] = "application/json"
    url = base + fill(case.path, values)
    query = {k: fill(v, values) for k, v in case.query.items()}
    try:
        async with session.request(
            case.method,
            url,
            params=query,
            data=data,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
        ) as response:
            raw = await response.read()
            content_type = response.content_type if raw else ""
            text = raw.decode("utf-8", errors="replace")
            body: Any = None
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = text
            return Answer(response.status, content_type, body, text)
    except asyncio.TimeoutError:
        return Answer(NO_ANSWER, "", None, "")


async def run_cases(base: str, app_key: str, selected: list[Case]) -> dict[str, Answer]:
    """Ask every case in order; a case's ``save`` feeds later cases' placeholders."""
    values = initial_values()
    answers: dict[str, Answer] = {}
    async with aiohttp.ClientSession() as session:
        for case in selected:
            answer = await ask(session, base, app_key, case, values)
            answers[case.name] = answer
            if case.save and isinstance(answer.body, str):
                values[case.save] = answer.body
    return answers


# ---------------------------------------------------------------------- shapes


def shape(value: Any) -> Any:
    """Field names and JSON types of ``value``: what the suite compares, never values.

    A list's shape is the list of its elements' distinct shapes (an empty list says
    nothing about its elements)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        distinct: dict[str, Any] = {}
        for item in value:
            item_shape = shape(item)
            distinct.setdefault(json.dumps(item_shape, sort_keys=True), item_shape)
        return [distinct[k] for k in sorted(distinct)]
    if isinstance(value, dict):
        return {k: shape(v) for k, v in sorted(value.items())}
    return type(value).__name__


def body_shape(answer: Answer) -> Any:
    """The shape of a JSON body; ``"text"`` for any other body, ``"empty"`` for none."""
    if not answer.text:
        return "empty"
    if answer.content_type == "application/json" or not isinstance(answer.body, str):
        try:
            return shape(json.loads(answer.text))
        except ValueError:
            return "text"
    return "text"


def shape_differences(expected: Any, actual: Any, where: str = "$") -> list[str]:
    """Field-by-field differences between two shapes, as readable lines."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        found: list[str] = []
        for key in sorted(set(expected) | set(actual)):
            if key not in actual:
                found.append(f"{where}.{key}: missing (yagna: {json.dumps(expected[key])})")
            elif key not in expected:
                found.append(f"{where}.{key}: not in yagna's answer")
            else:
                found.extend(shape_differences(expected[key], actual[key], f"{where}.{key}"))
        return found
    if isinstance(expected, list) and isinstance(actual, list):
        if not expected or not actual:
            return []
        found = []
        for index, item in enumerate(actual):
            candidates = [shape_differences(e, item, f"{where}[{index}]") for e in expected]
            best = min(candidates, key=len)
            found.extend(best)
        return found
    if expected != actual:
        return [f"{where}: {json.dumps(actual)} where yagna has {json.dumps(expected)}"]
    return []
