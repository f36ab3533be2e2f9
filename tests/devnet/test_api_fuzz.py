"""A short property-based fuzz of the devnet's REST API (the long one: tests/chaos)."""

from __future__ import annotations

import pytest

from tests.devnet.fuzz import (
    TIME_SCALE,
    ThreadedDevnet,
    fuzz,
    judge,
    real_objects,
    served_operation_ids,
)
from tests.support.openapi import default_contract

#: Cases per operation and generation mode: ~300 requests, derandomized so CI is stable.
EXAMPLES = 3


def test_judge_refuses_what_the_fuzz_looks_for() -> None:
    judge("GET", "/payment-api/v1/allocations", 200, [])
    judge("GET", "/activity-api/v1/activity/a/state", 401, {"message": "no key"})
    judge("GET", "/payment-api/v1/demandDecorations?allocationIds=x", 404, {"message": "?"})
    crash = {"message": "devnet internal error: KeyError: 'x'"}
    with pytest.raises(AssertionError, match="the devnet crashed"):
        judge("GET", "/payment-api/v1/allocations/a", 500, crash)
    with pytest.raises(AssertionError, match="is not of type 'array'"):
        judge("GET", "/payment-api/v1/allocations", 200, {"allocations": []})
    judge("GET", "/payment-api/v1/debitNotes/x/payments", 404, {"message": "?"})
    with pytest.raises(AssertionError, match="status 404 is not documented"):
        judge("GET", "/payment-api/v1/requestorAccounts", 404, {"message": "?"})
    with pytest.raises(AssertionError, match="status 409 is not documented"):
        judge("GET", "/activity-api/v1/activity/a/state", 409, {"message": "?"})


def test_every_served_operation_is_in_the_contract() -> None:
    served = served_operation_ids()
    assert len(served) >= 45
    contract = default_contract()
    for operation_id in served:
        assert contract.operation(operation_id)


def test_fuzz_the_devnet_from_its_contract() -> None:
    with ThreadedDevnet(providers=3, seed=1, port=0, time_scale=TIME_SCALE) as devnet:
        assert devnet.net is not None
        ids = devnet.run(real_objects(devnet.net))
        outcome = fuzz(devnet.net, ids, examples=EXAMPLES, derandomize=True)
    assert not outcome.failures, "\n\n".join(outcome.failures[:10])
    assert len(outcome.requests) == len(served_operation_ids())
    assert sum(outcome.requests.values()) >= 200
    assert {200, 400, 401, 404} <= set(outcome.statuses)
