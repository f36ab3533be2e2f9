"""Every fault kind of a profile, seen by a real client, plus reproducibility from the seed."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from golem.payload import VmPayload
from golem.resources import BatchError, Deploy, Run, Start
from golem.resources.proposal.exceptions import ProposalRejected

from golem_tasks.devnet.profile import Faults, Group, Profile, ProviderSpec
from tests.devnet.flows import (
    ACTIVITY,
    DEPLOY_START,
    MARKET,
    Api,
    activity,
    agreement,
    offers,
    run,
    run_script,
    subscribe,
)


def _in(seconds: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).isoformat()


PAYLOAD = VmPayload(package_url="hash:sha3:abc:http://127.0.0.1/images/abc.gvmi")


async def _golem_agreement(golem, subnet: str):
    allocation = await golem.create_allocation(1)
    demand = await golem.create_demand(PAYLOAD, subnet=subnet, allocations=[allocation])
    proposal = await anext(demand.initial_proposals())
    ours = await proposal.respond()
    theirs = await anext(ours.responses())
    agreement = await theirs.create_agreement()
    await agreement.confirm()
    return agreement


async def test_reject_proposal(golem_node) -> None:
    async with golem_node() as golem:
        allocation = await golem.create_allocation(1)
        demand = await golem.create_demand(PAYLOAD, subnet="rejectprop", allocations=[allocation])
        proposal = await anext(demand.initial_proposals())
        ours = await proposal.respond()
        with pytest.raises(ProposalRejected, match="reject_proposal"):
            await anext(ours.responses())


async def test_reject_agreement(golem_node) -> None:
    async with golem_node() as golem:
        agreement = await _golem_agreement(golem, "rejectagr")
        assert await agreement.wait_for_approval() is False


async def test_agreement_timeout(api) -> None:
    agreement_id, _, _ = await agreement(api, "silent", approve=False)
    path = f"{MARKET}/agreements/{agreement_id}"
    assert (await api.call("POST", path + "/wait", params={"timeout": 0.3}))[0] == 408
    assert (await api.ok("GET", path))["state"] == "Pending"


async def test_deploy_failure(golem_node) -> None:
    async with golem_node() as golem:
        agreement = await _golem_agreement(golem, "nodeploy")
        assert await agreement.wait_for_approval()
        activity = await agreement.create_activity()
        batch = await activity.execute_commands(Deploy(), Start())
        with pytest.raises(BatchError, match="Deployment failed"):
            await batch.wait(timeout=10)
        assert (await activity.get_state()).state == ["Initialized", None]


async def test_provider_dies_into_an_activity(api) -> None:
    # die_after_sec=60 at time scale 60: the exe-unit crashes one second in.
    agreement_id, _, _ = await agreement(api, "dying")
    activity_id = await activity(api, agreement_id)
    started = time.monotonic()
    results = await run_script(api, activity_id, [*DEPLOY_START, run("sleep 5")], timeout=10)
    assert 0.5 < time.monotonic() - started < 3
    assert results[-1]["result"] == "Error"
    assert "ExeUnit terminated unexpectedly" in results[-1]["message"]
    state = await api.ok("GET", f"{ACTIVITY}/activity/{activity_id}/state")
    assert state["state"] == ["Terminated", None] and state["reason"] == "ExeUnit crashed"
    reason = await api.ok("POST", f"{MARKET}/agreements/{agreement_id}/terminate/reason")
    assert reason["terminator"] == "Provider"
    assert reason["reason"]["golem.provider.code"] == "ActivityCrashed"


async def test_command_failure(golem_node) -> None:
    async with golem_node() as golem:
        agreement = await _golem_agreement(golem, "failing")
        assert await agreement.wait_for_approval()
        activity = await agreement.create_activity()
        batch = await activity.execute_commands(Deploy(), Start(), Run("echo hi"))
        events = await batch.wait(timeout=10, ignore_errors=True)
        assert events[-1].result == "Error"
        assert events[-1].message == "ExeScript command exited with code 1"
        assert "injected command failure" in events[-1].stderr


async def test_slowdown(api) -> None:
    agreement_id, _, _ = await agreement(api, "slow")
    activity_id = await activity(api, agreement_id)
    await run_script(api, activity_id, DEPLOY_START)
    started = time.monotonic()
    await run_script(api, activity_id, [run("sleep 0.2")])
    assert time.monotonic() - started >= 0.55  # 3x slower


async def test_api_latency(api) -> None:
    agreement_id, _, _ = await agreement(api, "laggy")
    started = time.monotonic()
    activity_id = await activity(api, agreement_id)
    await api.ok("GET", f"{ACTIVITY}/activity/{activity_id}/state")
    assert time.monotonic() - started >= 0.6  # two provider-routed calls


async def test_error_rate(api) -> None:
    """Every call routed to an erratic provider fails the way yagna reports net failures."""
    demand_id = await subscribe(api, "erratic")
    offer = (await offers(api, demand_id))[0]
    demand = (await api.ok("GET", f"{MARKET}/demands"))[-1]
    status, body = await api.call(
        "POST",
        f"{MARKET}/demands/{demand_id}/proposals/{offer['proposalId']}",
        json_body={"properties": demand["properties"], "constraints": demand["constraints"]},
    )
    assert status == 500 and "error_rate" in body["message"]


async def test_busy_provider_serves_one_agreement(start_devnet, http) -> None:
    async with start_devnet(providers=1) as net:
        fast = Api(http, net.api_url, net.app_key)
        agreement_id, _, _ = await agreement(fast)
        demand_id = await subscribe(fast)
        assert await offers(fast, demand_id) == []  # its offer is withdrawn while busy
        await fast.ok("POST", f"{MARKET}/agreements/{agreement_id}/terminate", json_body={})
        assert len(await offers(fast, demand_id)) == 1  # and published again when free


FAULTY = Profile(
    (
        Group(
            4,
            ProviderSpec(
                name="p",
                max_agreements=10,
                faults=Faults(
                    reject_proposal=0.3,
                    reject_agreement=0.3,
                    command_failure=0.5,
                    error_rate=0.3,
                ),
            ),
        ),
    )
)


async def _fault_outcomes(net, http, polls: int) -> list:
    """What the faults decided for one fixed script; ``polls`` extra status and result
    polls (which may fail too) are made between the steps and are not part of it."""
    api = Api(http, net.api_url, net.app_key)
    outcomes: list = []

    async def poll(path: str) -> None:
        for _ in range(polls):
            await api.call("GET", path, params={"timeout": 0})

    async def until_ok(method: str, path: str, **kwargs) -> Any:
        for _ in range(100):  # calls fail at random (error_rate): that is the point
            status, body = await api.call(method, path, **kwargs)
            if status < 500:
                return body
        raise AssertionError(f"{method} {path} kept failing")

    demand_id = await subscribe(api)
    found = sorted(await offers(api, demand_id), key=lambda o: o["issuerId"])
    demand = next(d for d in await api.ok("GET", f"{MARKET}/demands") if d["demandId"] == demand_id)
    for offer in found:
        status, ours = await api.call(
            "POST",
            f"{MARKET}/demands/{demand_id}/proposals/{offer['proposalId']}",
            json_body={"properties": demand["properties"], "constraints": demand["constraints"]},
        )
        outcomes.append(("counter", status))
        if status != 201:
            continue
        answer = None
        for _ in range(20):
            if answer is not None:
                break
            for event in await until_ok(
                "GET", f"{MARKET}/demands/{demand_id}/events", params={"timeout": 1}
            ):
                if event.get("proposalId") == ours:
                    answer = "rejected"
                elif event.get("proposal", {}).get("prevProposalId") == ours:
                    answer = event["proposal"]["proposalId"]
        outcomes.append(("answer", answer == "rejected"))
        if answer == "rejected":
            continue
        agreement_id = await api.ok(
            "POST",
            f"{MARKET}/agreements",
            json_body={"proposalId": answer, "validTo": _in(60)},
        )
        path = f"{MARKET}/agreements/{agreement_id}"
        status, _ = await api.call("POST", path + "/confirm")
        outcomes.append(("confirm", status))
        if status != 204:
            continue
        status, _ = await api.call("POST", path + "/wait", params={"timeout": 5})
        outcomes.append(("approved", status))
        if status != 204:
            continue
        status, activity_id = await api.call("POST", f"{ACTIVITY}/activity", json_body=agreement_id)
        outcomes.append(("activity", status))
        if status != 201:
            continue
        exec_path = f"{ACTIVITY}/activity/{activity_id}/exec"
        for commands in (DEPLOY_START, *[[run("true")]] * 5):
            await poll(f"{ACTIVITY}/activity/{activity_id}/state")
            status, batch = await api.call(
                "POST", exec_path, json_body={"text": json.dumps(commands)}
            )
            outcomes.append(("exec", status))
            if status != 200:
                continue
            await poll(f"{exec_path}/{batch}")
            results: list = []
            for _ in range(20):
                if results and results[-1]["isBatchFinished"]:
                    break
                results = await until_ok("GET", f"{exec_path}/{batch}", params={"timeout": 5})
            outcomes.append(("results", [r["result"] for r in results]))
    return outcomes


async def test_same_seed_same_faults_whatever_the_polls(start_devnet, http) -> None:
    async def outcomes(seed: int, polls: int) -> tuple:
        async with start_devnet(seed=seed, profile=FAULTY) as net:
            identities = sorted(p.node_id for p in net.network.providers)
            return identities, await _fault_outcomes(net, http, polls)

    first = await outcomes(11, polls=0)
    assert await outcomes(11, polls=3) == first
    assert await outcomes(12, polls=0) != first
    decided = [kind for kind, _ in first[1]]
    assert {"counter", "answer", "exec", "results"} <= set(decided)  # a real script ran


async def test_default_network_varies_but_is_reproducible(start_devnet, http) -> None:
    async def properties(seed: int) -> list:
        async with start_devnet(seed=seed, providers=5) as net:
            fast = Api(http, net.api_url, net.app_key)
            found = await offers(fast, await subscribe(fast))
            keys = (
                "golem.inf.cpu.threads",
                "golem.inf.mem.gib",
                "golem.com.pricing.model.linear.coeffs",
            )
            return sorted(tuple(str(o["properties"][k]) for k in keys) for o in found)

    assert await properties(3) == await properties(3)
    assert len(set(await properties(3))) > 1
