"""Tests of the yagna contract validator in tests/support/openapi.py.

Sample bodies are shaped like what yagna really sends golem-core; they are checked against
the contract kept in the repository (tests/contract/yagna-openapi.json).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests.support import openapi
from tests.support.openapi import YagnaContract

NOW = "2024-05-01T12:00:00.123456Z"
LATER = "2034-05-01T12:00:00+02:00"


@pytest.fixture(scope="module")
def contract() -> YagnaContract:
    return openapi.default_contract()


def failure(contract: YagnaContract, *args: Any, **kwargs: Any) -> str:
    """The AssertionError message validate_response raises (and fail if it raises none)."""
    with pytest.raises(AssertionError) as info:
        contract.validate_response(*args, **kwargs)
    return str(info.value)


# --------------------------------------------------------------------------------------
# Sample bodies


def allocation() -> dict[str, Any]:
    return {
        "allocationId": "4e2f34b6-0b6b-4a5b-8c1c-6f2a8f0f6f10",
        "address": "0x" + "ab" * 20,
        "paymentPlatform": "erc20-holesky-tglm",
        "totalAmount": "5",
        "spentAmount": "0",
        "remainingAmount": "5",
        "timestamp": NOW,
        "timeout": LATER,
        "makeDeposit": False,
    }


def proposal_event() -> dict[str, Any]:
    return {
        "eventType": "ProposalEvent",
        "eventDate": NOW,
        "proposal": {
            "properties": {
                "golem.inf.mem.gib": 8.0,
                "golem.runtime.name": "vm",
                "golem.com.usage.vector": ["golem.usage.cpu_sec", "golem.usage.duration_sec"],
            },
            "constraints": "(&(golem.srv.comp.expiration>1714564800000))",
            "proposalId": "R-7a1c",
            "issuerId": "0x" + "cd" * 20,
            "state": "Initial",
            "timestamp": NOW,
        },
    }


def exec_result(index: int = 0, finished: bool = True) -> dict[str, Any]:
    return {
        "index": index,
        "eventDate": NOW,
        "result": "Ok",
        "stdout": "hello\n",
        "stderr": "",
        "isBatchFinished": finished,
    }


def debit_note() -> dict[str, Any]:
    return {
        "debitNoteId": "dn-1",
        "issuerId": "0x" + "cd" * 20,
        "recipientId": "0x" + "ab" * 20,
        "payeeAddr": "0x" + "cd" * 20,
        "payerAddr": "0x" + "ab" * 20,
        "paymentPlatform": "erc20-holesky-tglm",
        "timestamp": NOW,
        "agreementId": "ag-1",
        "activityId": "act-1",
        "totalAmountDue": "0.000123",
        "paymentDueDate": LATER,
        "status": "RECEIVED",
    }


# --------------------------------------------------------------------------------------
# The contract: structure


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/market-api/v1/demands", "subscribeDemand"),
        ("GET", "/market-api/v1/demands/abc/events", "collectOffers"),
        ("get", "/market-api/v1/demands/abc/events?timeout=5&maxEvents=10", "collectOffers"),
        ("GET", "http://127.0.0.1:7465/market-api/v1/demands", "getDemands"),
        ("GET", "/market-api/v1/demands/", "getDemands"),
        ("POST", "/market-api/v1/demands/d1/proposals/p1", "counterProposalDemand"),
        ("POST", "/market-api/v1/demands/d1/proposals/p1/reject", "rejectProposalOffer"),
        ("POST", "/market-api/v1/agreements/a1/confirm", "confirmAgreement"),
        ("GET", "/market-api/v1/agreementEvents", "collectAgreementEvents"),
        ("POST", "/activity-api/v1/activity", "createActivity"),
        ("GET", "/activity-api/v1/activity/a1/state", "GetActivityState"),
        ("GET", "/activity-api/v1/activity/a1/exec/b1", "getExecBatchResults"),
        ("DELETE", "/activity-api/v1/activity/a1", "DestroyActivity"),
        ("POST", "/payment-api/v1/allocations", "createAllocation"),
        ("GET", "/payment-api/v1/demandDecorations?allocationIds=a1", "getDemandDecorations"),
        ("GET", "/payment-api/v1/payments/status", "paymentsStatus"),  # literal beats {id}
        ("GET", "/payment-api/v1/payments/p1", "getPayment"),
        ("POST", "/payment-api/v1/debitNotes/dn1/accept", "acceptDebitNote"),
        ("GET", "/me", "getIdentity"),
        ("GET", "/version/get", "getVersion"),
        ("GET", "/net-api/v2/vpn/net/n1/tcp/10.0.0.2/22", "connect_tcp"),
    ],
)
def test_operation_lookup(contract: YagnaContract, method: str, path: str, expected: str) -> None:
    assert contract.operation_id(method, path) == expected
    assert contract.known_operation(method, path)
    assert openapi.operation_id(method, path) == expected
    assert openapi.known_operation(method, path)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/market-api/v2/demands"),
        ("GET", "/market-api/v1/demandz"),
        ("GET", "/market-api/v1"),
        ("PATCH", "/market-api/v1/demands"),
        ("GET", "/activity-api/v1/activity/a1/exec/b1/extra"),
        ("GET", "/nope"),
        ("GET", "/net-api/v1/net"),  # golem-core's ya-net v1: not in these specs
    ],
)
def test_unknown_operations(contract: YagnaContract, method: str, path: str) -> None:
    assert contract.operation_id(method, path) is None
    assert not contract.known_operation(method, path)


def test_unknown_path_message_suggests_templates(contract: YagnaContract) -> None:
    message = failure(contract, "GET", "/market-api/v1/demandz", 200, [])
    assert "no operation matches GET /market-api/v1/demandz" in message
    assert "/market-api/v1/demands" in message


def test_undocumented_method_message(contract: YagnaContract) -> None:
    message = failure(contract, "PATCH", "/market-api/v1/demands/d1", 200, None)
    assert "PATCH is not documented for /market-api/v1/demands/{subscriptionId}" in message
    assert "documented methods: DELETE" in message


# --------------------------------------------------------------------------------------
# Status codes


def test_status_not_documented(contract: YagnaContract) -> None:
    message = failure(contract, "GET", "/payment-api/v1/allocations/a1", 204, None)
    assert "getAllocation (GET /payment-api/v1/allocations/{allocationId}" in message
    assert "status 204 is not documented; documented: 200, 401, 404, 500" in message


def test_default_response_covers_errors_only(contract: YagnaContract) -> None:
    # subscribeDemand answers 201 with the id; 200 is a devnet bug even though `default` exists.
    contract.validate_response("POST", "/market-api/v1/demands", 201, "d-1")
    message = failure(contract, "POST", "/market-api/v1/demands", 200, "d-1")
    assert "status 200 is not documented" in message
    assert "'default' is only taken to cover error statuses" in message
    contract.validate_response("POST", "/market-api/v1/demands", 503, {"message": "busy"})
    contract.validate_response("POST", "/market-api/v1/demands", "400", {"message": "bad"})


def test_error_bodies_follow_error_message(contract: YagnaContract) -> None:
    contract.validate_response("GET", "/market-api/v1/agreements/a1", 404, {"message": "gone"})
    contract.validate_response("GET", "/market-api/v1/agreements/a1", 404, {})
    message = failure(contract, "GET", "/market-api/v1/agreements/a1", 404, "not found")
    assert "#/components/schemas/ErrorMessage" in message
    assert "'not found' is not of type 'object'" in message


# --------------------------------------------------------------------------------------
# Allocations


def test_allocation_valid(contract: YagnaContract) -> None:
    contract.validate_response("POST", "/payment-api/v1/allocations", 201, allocation())
    contract.validate_response("GET", "/payment-api/v1/allocations/a1", 200, allocation())
    contract.validate_response("GET", "/payment-api/v1/allocations", 200, [allocation()] * 2)
    openapi.validate_response("GET", "/payment-api/v1/allocations", 200, [])
    structured = {**allocation(), "paymentPlatform": {"driver": "erc20", "network": "holesky"}}
    contract.validate_response("GET", "/payment-api/v1/allocations/a1", 200, structured)


@pytest.mark.parametrize(
    ("mutate", "pointer", "needle"),
    [
        (lambda a: a.pop("allocationId"), "(body root)", "'allocationId' is a required property"),
        (lambda a: a.update(totalAmount=5), "/totalAmount", "5 is not of type 'string'"),
        (lambda a: a.update(timestamp="2024-05-01T12:00:00"), "/timestamp", "not a 'date-time'"),
        (lambda a: a.update(timestamp="2024-05-01 12:00:00Z"), "/timestamp", "date-time"),
        (lambda a: a.update(makeDeposit="no"), "/makeDeposit", "'no' is not of type 'boolean'"),
        (lambda a: a.update(extendTimeout=2**70), "/extendTimeout", "is not a 'int64'"),
        (lambda a: a.update(paymentPlatform=7), "/paymentPlatform", "not valid under any"),
    ],
)
def test_allocation_invalid(
    contract: YagnaContract, mutate: Any, pointer: str, needle: str
) -> None:
    body = allocation()
    mutate(body)
    message = failure(contract, "POST", "/payment-api/v1/allocations", 201, body)
    assert "createAllocation (POST /payment-api/v1/allocations) -> 201" in message
    assert f"at {pointer}: " in message
    assert needle in message
    assert "#/components/schemas/Allocation" in message


def test_allocation_list_reports_the_item_index(contract: YagnaContract) -> None:
    bad = allocation()
    bad["remainingAmount"] = None
    message = failure(contract, "GET", "/payment-api/v1/allocations", 200, [allocation(), bad])
    assert "at /1/remainingAmount: None is not of type 'string'" in message
    assert "#/components/schemas/Allocation/properties/remainingAmount" in message


# --------------------------------------------------------------------------------------
# Market events and discriminators


def test_demand_events_with_proposal_events(contract: YagnaContract) -> None:
    rejected = {
        "eventType": "ProposalRejectedEvent",
        "eventDate": NOW,
        "proposalId": "R-7a1c",
        "reason": {"message": "no", "golem.requestor.code": "Busy"},
    }
    events = [proposal_event(), rejected]
    contract.validate_response("GET", "/market-api/v1/demands/d1/events?timeout=3", 200, events)
    contract.validate_response("GET", "/market-api/v1/demands/d1/events", 200, [])


@pytest.mark.parametrize(
    ("mutate", "pointer", "needle"),
    [
        (lambda e: e["proposal"].pop("proposalId"), "/0/proposal", "'proposalId' is a required"),
        (
            lambda e: e["proposal"].update(state="Pending"),
            "/0/proposal/state",
            "'Pending' is not one",
        ),
        (
            lambda e: e["proposal"].update(properties=[]),
            "/0/proposal/properties",
            "not of type 'object'",
        ),
        (
            lambda e: e["proposal"].update(constraints=None),
            "/0/proposal/constraints",
            "None is not",
        ),
        (lambda e: e.pop("proposal"), "/0", "'proposal' is a required property"),
        (lambda e: e.pop("eventDate"), "/0", "'eventDate' is a required property"),
        (lambda e: e.update(eventDate="yesterday"), "/0/eventDate", "is not a 'date-time'"),
        (
            lambda e: e.update(eventType="ProposalEvnt"),
            "/0/eventType",
            "'ProposalEvnt' is not one of",
        ),
    ],
)
def test_demand_events_invalid(
    contract: YagnaContract, mutate: Any, pointer: str, needle: str
) -> None:
    event = proposal_event()
    mutate(event)
    message = failure(contract, "GET", "/market-api/v1/demands/d1/events", 200, [event])
    assert "collectOffers (GET /market-api/v1/demands/{subscriptionId}/events" in message
    assert f"at {pointer}: " in message
    assert needle in message


def test_unknown_event_type_lists_the_known_ones(contract: YagnaContract) -> None:
    event = {**proposal_event(), "eventType": "Proposal"}
    message = failure(contract, "GET", "/market-api/v1/demands/d1/events", 200, [event])
    assert "'ProposalEvent'" in message and "'ProposalRejectedEvent'" in message


def test_event_is_validated_as_the_schema_its_type_names(contract: YagnaContract) -> None:
    # A ProposalRejectedEvent needs proposalId, not a proposal: the discriminator decides.
    event = {"eventType": "ProposalRejectedEvent", "eventDate": NOW, "proposal": {}}
    message = failure(contract, "GET", "/market-api/v1/demands/d1/events", 200, [event])
    assert "'proposalId' is a required property" in message
    assert "ProposalRejectedEvent" in message


def test_agreement_events(contract: YagnaContract) -> None:
    approved = {"eventType": "AgreementApprovedEvent", "eventDate": NOW, "agreementId": "ag-1"}
    terminated = {
        "eventType": "AgreementTerminatedEvent",
        "eventDate": NOW,
        "agreementId": "ag-1",
        "terminator": "Requestor",
        "signature": "sig",
        "reason": {"message": "done", "golem.requestor.code": "Success"},
    }
    path = "/market-api/v1/agreementEvents?timeout=5&afterTimestamp=2024-05-01T00:00:00Z"
    contract.validate_response("GET", path, 200, [approved, terminated])
    bad = {**terminated, "terminator": "Nobody"}
    bad.pop("signature")
    message = failure(contract, "GET", path, 200, [approved, bad])
    assert "at /1/terminator: 'Nobody' is not one of ['Requestor', 'Provider']" in message
    assert "at /1: 'signature' is a required property" in message


# --------------------------------------------------------------------------------------
# Activity


def test_activity_state(contract: YagnaContract) -> None:
    path = "/activity-api/v1/activity/act-1/state"
    contract.validate_response("GET", path, 200, {"state": ["Ready", None]})
    contract.validate_response("GET", path, 200, {"state": ["Initialized", "Deployed"]})
    contract.validate_response(
        "GET", path, 200, {"state": ["Terminated", None], "reason": "done", "errorMessage": "x"}
    )
    assert "at /state/1: 'Bogus' is not one of" in failure(
        contract, "GET", path, 200, {"state": ["Ready", "Bogus"]}
    )
    assert "at /state: 'Ready' is not of type 'array'" in failure(
        contract, "GET", path, 200, {"state": "Ready"}
    )
    assert "'state' is a required property" in failure(contract, "GET", path, 200, {})


def test_create_activity_and_exec(contract: YagnaContract) -> None:
    contract.validate_response("POST", "/activity-api/v1/activity", 201, "act-1")
    contract.validate_response("POST", "/activity-api/v1/activity", 201, {"activityId": "act-1"})
    message = failure(contract, "POST", "/activity-api/v1/activity", 201, {"id": "act-1"})
    assert "not valid under any of the given schemas" in message
    assert (
        "closest alternative fails at (body root): 'activityId' is a required property" in message
    )
    assert "'activityId' is a required" in message
    contract.validate_response("POST", "/activity-api/v1/activity/act-1/exec", 200, "batch-1")
    assert "is not of type 'string'" in failure(
        contract, "POST", "/activity-api/v1/activity/act-1/exec", 200, {"batchId": "b"}
    )


def test_exec_batch_results(contract: YagnaContract) -> None:
    path = "/activity-api/v1/activity/act-1/exec/batch-1?timeout=5&commandIndex=1"
    results = [exec_result(0, finished=False), exec_result(1, finished=True)]
    contract.validate_response("GET", path, 200, results)
    contract.validate_response("GET", path, 200, [])
    error = {**exec_result(1), "result": "Error", "message": "exit code 1", "stdout": ""}
    contract.validate_response("GET", path, 200, [exec_result(0), error])


@pytest.mark.parametrize(
    ("mutate", "pointer", "needle"),
    [
        (lambda r: r.update(result="OK"), "/0/result", "'OK' is not one of ['Ok', 'Error']"),
        (lambda r: r.update(index=-1), "/0/index", "-1 is less than the minimum of 0"),
        (lambda r: r.update(index=1.5), "/0/index", "1.5 is not of type 'integer'"),
        (lambda r: r.pop("eventDate"), "/0", "'eventDate' is a required property"),
        (lambda r: r.update(message=None), "/0/message", "None is not of type 'string'"),
        (lambda r: r.update(isBatchFinished=1), "/0/isBatchFinished", "1 is not of type 'boolean'"),
    ],
)
def test_exec_batch_results_invalid(
    contract: YagnaContract, mutate: Any, pointer: str, needle: str
) -> None:
    result = exec_result()
    mutate(result)
    path = "/activity-api/v1/activity/act-1/exec/batch-1"
    message = failure(contract, "GET", path, 200, [result])
    assert "getExecBatchResults" in message
    assert f"at {pointer}: {needle}" in message
    assert "#/components/schemas/ExeScriptCommandResult" in message


def test_destroy_activity_has_no_body(contract: YagnaContract) -> None:
    contract.validate_response("DELETE", "/activity-api/v1/activity/act-1", 200, None)
    contract.validate_response("DELETE", "/activity-api/v1/activity/act-1", 200, b"")
    message = failure(contract, "DELETE", "/activity-api/v1/activity/act-1", 200, {"ok": True})
    assert "documents no body" in message


# --------------------------------------------------------------------------------------
# Payments: debit notes


def test_debit_note(contract: YagnaContract) -> None:
    contract.validate_response("GET", "/payment-api/v1/debitNotes/dn-1", 200, debit_note())
    contract.validate_response("GET", "/payment-api/v1/debitNotes", 200, [debit_note()])
    events = [
        {"eventType": "DebitNoteReceivedEvent", "eventDate": NOW, "debitNoteId": "dn-1"},
        {"eventType": "DebitNoteAcceptedEvent", "eventDate": NOW, "debitNoteId": "dn-1"},
    ]
    contract.validate_response("GET", "/payment-api/v1/debitNoteEvents?timeout=5", 200, events)
    # acceptDebitNote answers 200 without a body.
    contract.validate_response("POST", "/payment-api/v1/debitNotes/dn-1/accept", 200, None)


@pytest.mark.parametrize(
    ("mutate", "pointer", "needle"),
    [
        (lambda d: d.pop("status"), "(body root)", "'status' is a required property"),
        (lambda d: d.update(status="Received"), "/status", "'Received' is not one of"),
        (lambda d: d.update(totalAmountDue=0.1), "/totalAmountDue", "0.1 is not of type 'string'"),
        (lambda d: d.update(paymentDueDate=None), "/paymentDueDate", "None is not of type"),
        (lambda d: d.update(usageCounterVector=[1.0, 2.0]), "/usageCounterVector", "not of type"),
    ],
)
def test_debit_note_invalid(
    contract: YagnaContract, mutate: Any, pointer: str, needle: str
) -> None:
    note = debit_note()
    mutate(note)
    message = failure(contract, "GET", "/payment-api/v1/debitNotes/dn-1", 200, note)
    assert "getDebitNote (GET /payment-api/v1/debitNotes/{debitNoteId}" in message
    assert f"at {pointer}: " in message and needle in message


def test_debit_note_event_type_must_be_known(contract: YagnaContract) -> None:
    event = {"eventType": "DebitNoteReceived", "eventDate": NOW, "debitNoteId": "dn-1"}
    message = failure(contract, "GET", "/payment-api/v1/debitNoteEvents", 200, [event])
    assert "at /0/eventType: 'DebitNoteReceived' is not one of" in message
    assert "'DebitNoteReceivedEvent'" in message


# --------------------------------------------------------------------------------------
# Identity, decorations, content types, bodies as bytes


def test_identity(contract: YagnaContract) -> None:
    me = {"identity": "0x" + "ab" * 20, "name": "requestor", "role": "manager"}
    contract.validate_response("GET", "/me", 200, me)
    assert "'role' is a required property" in failure(
        contract, "GET", "/me", 200, {k: v for k, v in me.items() if k != "role"}
    )


def test_demand_decorations(contract: YagnaContract) -> None:
    key = "golem.com.payment.platform.erc20-holesky-tglm.address"
    decoration = {
        "properties": [{"key": key, "value": "0x" + "ab" * 20}],
        "constraints": [f"({key}=*)"],
    }
    path = "/payment-api/v1/demandDecorations?allocationIds=a1"
    contract.validate_response("GET", path, 200, decoration)
    broken = copy.deepcopy(decoration)
    broken["constraints"] = f"({key}=*)"
    assert "at /constraints: " in failure(contract, "GET", path, 200, broken)


def test_content_type(contract: YagnaContract) -> None:
    path = "/payment-api/v1/allocations/a1"
    contract.validate_response("GET", path, 200, allocation(), "application/json; charset=utf-8")
    contract.validate_response("GET", path, 200, allocation(), "Application/JSON")
    message = failure(contract, "GET", path, 200, allocation(), content_type="text/plain")
    assert "content type 'text/plain' is not documented; documented: application/json" in message


def test_bytes_bodies_are_decoded_as_json(contract: YagnaContract) -> None:
    path = "/payment-api/v1/allocations/a1"
    contract.validate_response("GET", path, 200, json.dumps(allocation()).encode())
    assert "not valid JSON" in failure(contract, "GET", path, 200, b"{not json")


def test_octet_stream_responses_are_not_schema_checked(contract: YagnaContract) -> None:
    path = "/activity-api/v1/activity/act-1/encrypted"
    contract.validate_response("POST", path, 200, b"\x00\x01", "application/octet-stream")
    assert "must be bytes or text" in failure(
        contract, "POST", path, 200, {"x": 1}, content_type="application/octet-stream"
    )


def test_failure_message_is_actionable(contract: YagnaContract) -> None:
    """The whole message, for a body with several faults, reads like a fix-it list."""
    event = proposal_event()
    event["proposal"]["state"] = "initial"
    event["proposal"].pop("issuerId")
    message = failure(contract, "GET", "/market-api/v1/demands/d1/events", 200, [event])
    lines = message.splitlines()
    assert lines[0] == (
        "yagna contract: collectOffers (GET /market-api/v1/demands/{subscriptionId}/events) "
        "-> 200: the body does not match "
        "#/components/responses/EventList/content/application~1json/schema:"
    )
    assert "  - at /0/proposal: 'issuerId' is a required property" in lines
    assert any(
        line.startswith("  - at /0/proposal/state: 'initial' is not one of") for line in lines
    )
    assert any("#/components/schemas/Proposal" in line for line in lines)
    assert lines[-1].startswith("  body: [{")
