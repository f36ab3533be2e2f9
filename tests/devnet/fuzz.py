"""Property-based fuzz of the devnet's REST API from the yagna contract (schemathesis).

schemathesis turns every operation of ``tests/contract/yagna-openapi.json`` that the devnet
serves into Hypothesis strategies of requests: valid ones (positive) and ones the contract
forbids (negative), with random ids and with ids of real objects (a demand, an offer, an
approved agreement, an activity, a batch, an allocation, a debit note, an invoice), so the
handlers behind the 404s are reached too. Every answer must come in time, must not be a
devnet crash (a 500 "devnet internal error"), and must be one the contract documents, modulo
the deviations listed in :func:`tests.support.openapi.check_devnet_response`.

schemathesis calls over ``requests`` (blocking), so the devnet runs in a thread with an event
loop of its own (:class:`ThreadedDevnet`).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import hypothesis
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.result import Ok

from golem_tasks.devnet import Devnet, api_activity, api_market, api_misc, api_payment
from tests.devnet.flows import (
    ACTIVITY,
    MARKET,
    PAYMENT,
    Api,
    activity,
    agreement,
    allocation,
    subscribe,
)
from tests.devnet.flows import offers as offers_of
from tests.support.openapi import CONTRACT_PATH, check_devnet_response, default_contract

#: Seconds an answer may take (long polls are capped far below it, see ``_bounded``).
ANSWER_TIMEOUT_S = 10.0
#: What a fuzzed long poll may wait at most: the fuzz checks shapes, not patience.
POLL_CAP_S = 0.1
#: Mid-agreement payments every minute of agreement time, i.e. every 0.5 s at scale 120.
TIME_SCALE = 120.0
PAYMENT_TERMS = {
    "golem.com.scheme.payu.debit-note.interval-sec?": 60,
    "golem.com.scheme.payu.payment-timeout-sec?": 120,
}


def served_operation_ids() -> list[str]:
    """Every contract operation that the devnet has a route for."""
    contract = default_contract()
    found = set()
    for module in (api_market, api_activity, api_payment, api_misc):
        for route in module.routes():
            op = contract.match(route.method, route.path)
            if op is not None and op.operation_id:
                found.add(op.operation_id)
    return sorted(found)


class ThreadedDevnet:
    """A devnet serving from a thread of its own, for blocking clients in this process."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.net: Devnet | None = None
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="fuzz-devnet", daemon=True)

    def _serve(self) -> None:
        async def main() -> None:
            self._stop = asyncio.Event()
            try:
                async with Devnet(**self.kwargs) as net:
                    self.net = net
                    self._ready.set()
                    await self._stop.wait()
            except BaseException as exc:
                self._failure = exc
                self._ready.set()
                raise

        self._loop.run_until_complete(main())
        self._loop.close()

    def __enter__(self) -> ThreadedDevnet:
        self._thread.start()
        if not self._ready.wait(30) or self.net is None:
            raise RuntimeError(f"the fuzz devnet did not start: {self._failure!r}")
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def run(self, coroutine: Any, timeout: float = 60) -> Any:
        """Run ``coroutine`` on the devnet's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)


async def real_objects(net: Devnet) -> dict[str, list[str]]:
    """Ids of real objects of every kind, by the path parameter names of the contract."""
    async with aiohttp.ClientSession() as session:
        api = Api(session, net.api_url, net.app_key)
        budget = await allocation(api, "100")
        demand_id = await subscribe(api)
        offer_ids = [o["proposalId"] for o in await offers_of(api, demand_id)]
        agreement_id, _, _ = await agreement(api, extra=PAYMENT_TERMS)
        activity_id = await activity(api, agreement_id)
        batch_id = await api.ok(
            "POST",
            f"{ACTIVITY}/activity/{activity_id}/exec",
            json_body={"text": json.dumps([{"deploy": {}}])},
        )
        # An agreement ended at once gives an invoice; the running one gives debit notes.
        ended, _, _ = await agreement(api, extra=PAYMENT_TERMS)
        await api.ok("POST", f"{MARKET}/agreements/{ended}/terminate", json_body={})
        notes: list[dict[str, Any]] = []
        invoices: list[dict[str, Any]] = []
        deadline = time.monotonic() + 20
        while (not notes or not invoices) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            notes = await api.ok("GET", f"{PAYMENT}/debitNotes")
            invoices = await api.ok("GET", f"{PAYMENT}/invoices")
        assert notes and invoices, "the fuzz devnet sent no debit note or invoice"
        return {
            "subscriptionId": [demand_id],
            "proposalId": offer_ids,
            "agreementId": [agreement_id, ended],
            "activityId": [activity_id],
            "batchId": [batch_id],
            "allocationId": [budget["allocationId"]],
            "debitNoteId": [n["debitNoteId"] for n in notes],
            "invoiceId": [i["invoiceId"] for i in invoices],
        }


@dataclass
class Outcome:
    """What one fuzz run did: requests per operation, statuses seen, failures found."""

    requests: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    #: Each distinct 5xx answer (operation and message): yagna's own, documented ones.
    server_errors: Counter[str] = field(default_factory=Counter)


def judge(
    method: str, path: str, status: int, body: Any, content_type: str = "application/json"
) -> None:
    """Raise AssertionError unless this answer is one the devnet may give."""
    if status >= 500 and "devnet internal error" in str(body):
        raise AssertionError(f"the devnet crashed: {method} {path} -> {status}: {body}")
    check_devnet_response(method, path, status, body, content_type)


def _bounded(case: Any) -> None:
    """Cap a long poll's ``timeout`` (a missing one would wait the default seconds)."""
    if any(p.name == "timeout" for p in case.operation.query):
        query = dict(case.query or {})
        value = query.get("timeout")
        if value is None or (
            isinstance(value, (int, float)) and not isinstance(value, bool) and value > POLL_CAP_S
        ):
            query["timeout"] = POLL_CAP_S
        case.query = query


def _strategy(operation: Any, mode: GenerationMode, ids: dict[str, list[str]]) -> Any:
    names = [p.name for p in operation.path_parameters]
    random_ids = operation.as_strategy(generation_mode=mode)
    if not names or not all(ids.get(name) for name in names):
        return random_ids

    @st.composite
    def with_real_ids(draw: Any) -> Any:
        chosen = {name: draw(st.sampled_from(ids[name])) for name in names}
        return draw(operation.as_strategy(generation_mode=mode, path_parameters=chosen))

    return st.one_of(random_ids, with_real_ids())


def fuzz(
    net: Devnet,
    ids: dict[str, list[str]],
    *,
    examples: int,
    derandomize: bool,
    operation_ids: list[str] | None = None,
) -> Outcome:
    """Fuzz every served operation with ``examples`` cases per generation mode."""
    document = json.loads(CONTRACT_PATH.read_text(encoding="utf-8"))
    schema = schemathesis.openapi.from_dict(document).include(
        operation_id=operation_ids or served_operation_ids()
    )
    outcome = Outcome()
    headers = {"Authorization": f"Bearer {net.app_key}"}
    with requests.Session() as session:
        for result in schema.get_all_operations():
            if not isinstance(result, Ok):
                raise result.err()
            operation = result.ok()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                for failure in _fuzz_one(
                    operation, mode, ids, net, session, headers, outcome, examples, derandomize
                ):
                    outcome.failures.append(failure)
    return outcome


def _fuzz_one(
    operation: Any,
    mode: GenerationMode,
    ids: dict[str, list[str]],
    net: Devnet,
    session: requests.Session,
    headers: dict[str, str],
    outcome: Outcome,
    examples: int,
    derandomize: bool,
) -> Iterator[str]:
    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=derandomize,
        suppress_health_check=list(HealthCheck),
        phases=(Phase.explicit, Phase.generate),  # no shrinking: the raw case is reported
        report_multiple_bugs=False,
    )
    @given(case=_strategy(operation, mode, ids))
    def check(case: Any) -> None:
        _bounded(case)
        outcome.requests[operation.label] += 1
        try:
            response = case.call(
                base_url=net.api_url, session=session, headers=headers, timeout=ANSWER_TIMEOUT_S
            )
        except requests.Timeout:
            raise AssertionError(
                f"no answer within {ANSWER_TIMEOUT_S}s: {case.method} {case.formatted_path} "
                f"query={case.query} body={case.body!r}"
            ) from None
        outcome.statuses[response.status_code] += 1
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = response.text
        content_type = (response.headers.get("content-type") or [""])[0]
        if response.status_code >= 500:
            message = body.get("message") if isinstance(body, dict) else body
            outcome.server_errors[f"{operation.label} -> {response.status_code}: {message}"] += 1
        try:
            judge(case.method, case.formatted_path, response.status_code, body, content_type)
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}\n  request: {case.method} {case.formatted_path} query={case.query} "
                f"body={case.body!r}"
            ) from None

    try:
        check()
    except Unsatisfiable:
        return  # nothing to make negative in this operation (e.g. no input at all)
    except AssertionError as exc:
        yield f"{operation.label} ({mode.value}): {exc}"
