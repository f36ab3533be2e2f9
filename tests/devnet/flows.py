"""Raw-HTTP steps of the requestor flow, shared by the devnet tests."""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp

MARKET = "/market-api/v1"
ACTIVITY = "/activity-api/v1"
PAYMENT = "/payment-api/v1"
PLATFORM = "erc20-holesky-tglm"


class Api:
    """A raw yagna REST client: status and decoded JSON body of every call."""

    def __init__(self, session: aiohttp.ClientSession, base: str, app_key: str) -> None:
        self.session = session
        self.base = base
        self.headers = {"Authorization": f"Bearer {app_key}"}

    async def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        data: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        kwargs: dict[str, Any] = {"params": params, "headers": {**self.headers, **(headers or {})}}
        if json_body is not None:
            kwargs["data"] = json.dumps(json_body)
            kwargs["headers"]["Content-Type"] = "application/json"
        elif data is not None:
            kwargs["data"] = data
        async with self.session.request(method, self.base + path, **kwargs) as response:
            raw = await response.read()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode()
            return response.status, body

    async def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        status, body = await self.call(method, path, **kwargs)
        assert 200 <= status < 300, f"{method} {path} -> {status}: {body}"
        return body


def expiration_ms(seconds: float = 1800) -> int:
    return int((time.time() + seconds) * 1000)


async def allocation(api: Api, amount: str = "10") -> dict[str, Any]:
    return await api.ok("POST", f"{PAYMENT}/allocations", json_body={"totalAmount": amount})


async def subscribe(
    api: Api,
    subnet: str = "public",
    *,
    properties: dict[str, Any] | None = None,
    constraints: str | None = None,
    lifetime: float = 1800,
) -> str:
    me = await api.ok("GET", "/me")
    props = {
        "golem.srv.comp.expiration": expiration_ms(lifetime),
        "golem.srv.caps.multi-activity": True,
        "golem.node.debug.subnet": subnet,
        f"golem.com.payment.platform.{PLATFORM}.address": me["identity"],
        "golem.com.payment.protocol.version": "3",
        **(properties or {}),
    }
    text = constraints or f"(&(golem.node.debug.subnet={subnet})\n\t(golem.runtime.name=vm))"
    return await api.ok(
        "POST", f"{MARKET}/demands", json_body={"properties": props, "constraints": text}
    )


async def events(api: Api, demand_id: str, timeout: float = 2, max_events: int = 100) -> list:
    return await api.ok(
        "GET",
        f"{MARKET}/demands/{demand_id}/events",
        params={"timeout": timeout, "maxEvents": max_events},
    )


async def offers(api: Api, demand_id: str) -> list[dict[str, Any]]:
    found = await events(api, demand_id, timeout=0.5)
    return [e["proposal"] for e in found if e["eventType"] == "ProposalEvent"]


async def counter(
    api: Api, demand_id: str, offer: dict[str, Any], extra: dict[str, Any] | None = None
) -> tuple[str, dict[str, Any]]:
    """Counter ``offer`` with the demand's own properties (plus ``extra``); return
    our proposal id and the provider's answer event."""
    demand = next(d for d in await api.ok("GET", f"{MARKET}/demands") if d["demandId"] == demand_id)
    body = {
        "properties": {**demand["properties"], **(extra or {})},
        "constraints": demand["constraints"],
    }
    ours = await api.ok(
        "POST", f"{MARKET}/demands/{demand_id}/proposals/{offer['proposalId']}", json_body=body
    )
    for _ in range(20):
        for event in await events(api, demand_id, timeout=1):
            if (
                event.get("proposalId") == ours
                or event.get("proposal", {}).get("prevProposalId") == ours
            ):
                return ours, event
    raise AssertionError("no answer to the counter-proposal")


async def agreement(
    api: Api,
    subnet: str = "public",
    extra: dict[str, Any] | None = None,
    approve: bool = True,
    session: str = "tests",
) -> tuple[str, str, dict[str, Any]]:
    """A confirmed (and by default approved) agreement with a provider of ``subnet``,
    confirmed with ``appSessionId=session``."""
    demand_id = await subscribe(api, subnet)
    offer = (await offers(api, demand_id))[0]
    _, answer = await counter(api, demand_id, offer, extra)
    draft = answer["proposal"]
    agreement_id = await api.ok(
        "POST",
        f"{MARKET}/agreements",
        json_body={"proposalId": draft["proposalId"], "validTo": _valid_to(60)},
    )
    await api.ok(
        "POST", f"{MARKET}/agreements/{agreement_id}/confirm", params={"appSessionId": session}
    )
    if approve:
        await api.ok("POST", f"{MARKET}/agreements/{agreement_id}/wait", params={"timeout": 5})
    return agreement_id, demand_id, draft


def _valid_to(seconds: float) -> str:
    from datetime import datetime, timedelta, timezone

    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).isoformat()


async def activity(api: Api, agreement_id: str) -> str:
    return await api.ok("POST", f"{ACTIVITY}/activity", json_body=agreement_id)


async def run_script(
    api: Api, activity_id: str, commands: list[dict[str, Any]], timeout: float = 30
) -> list[dict[str, Any]]:
    """Exec a batch and poll its results until it finishes."""
    batch = await api.ok(
        "POST", f"{ACTIVITY}/activity/{activity_id}/exec", json_body={"text": json.dumps(commands)}
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        results = await api.ok(
            "GET", f"{ACTIVITY}/activity/{activity_id}/exec/{batch}", params={"timeout": 5}
        )
        if results and results[-1]["isBatchFinished"]:
            return results
    raise AssertionError(f"batch {batch} did not finish in {timeout}s")


def run(command: str) -> dict[str, Any]:
    return {
        "run": {
            "entry_point": "/bin/sh",
            "args": ["-c", command],
            "capture": {"stdout": {"stream": {}}, "stderr": {"stream": {}}},
        }
    }


DEPLOY_START: list[dict[str, Any]] = [{"deploy": {}}, {"start": {}}]
