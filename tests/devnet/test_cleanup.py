"""Nothing outlives what it belongs to: processes their activity, batches their activity,
timers and tasks the devnet; a terminate command really stops what is running."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from pathlib import Path

import pytest

from golem_tasks.devnet.profile import Group, Profile, ProviderSpec
from tests.devnet.flows import (
    ACTIVITY,
    DEPLOY_START,
    MARKET,
    Api,
    activity,
    agreement,
    run,
    run_script,
)


def _running(token: str) -> list[int]:
    """Pids of live (not zombie) processes whose command line contains ``token``."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as cmdline:
                command = cmdline.read()
            with open(f"/proc/{name}/stat", "rb") as stat:
                state = stat.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if token.encode() in command and state != b"Z":
            found.append(int(name))
    return found


async def _gone(token: str, timeout: float = 3.0) -> bool:
    for _ in range(int(timeout / 0.05)):
        if not _running(token):
            return True
        await asyncio.sleep(0.05)
    return False


def _leftovers() -> tuple[str, list]:
    """A unique sleep left running three ways: in the background, in a new session, and
    in a new session that also cleared its environment (found by its directory)."""
    seconds = f"4242.{secrets.randbelow(10**6):06d}"
    script = [
        run(f"sleep {seconds} >/dev/null 2>&1 &"),
        run(f"setsid sleep {seconds} >/dev/null 2>&1 < /dev/null &"),
        run(f"setsid env -i /bin/sleep {seconds} >/dev/null 2>&1 < /dev/null &"),
    ]
    return seconds, script


async def _ready(api: Api) -> tuple[str, str]:
    agreement_id, _, _ = await agreement(api)
    activity_id = await activity(api, agreement_id)
    await run_script(api, activity_id, DEPLOY_START)
    return agreement_id, activity_id


async def test_processes_left_running_die_with_their_activity(api) -> None:
    _, activity_id = await _ready(api)
    token, script = _leftovers()
    results = await run_script(api, activity_id, script)
    assert [r["result"] for r in results] == ["Ok"] * 3
    for _ in range(40):  # the backgrounded commands may take a moment to start
        if len(_running(token)) == 3:
            break
        await asyncio.sleep(0.05)
    assert len(_running(token)) == 3
    await api.ok("DELETE", f"{ACTIVITY}/activity/{activity_id}")
    assert await _gone(token), _running(token)


async def test_processes_die_with_the_agreement(api) -> None:
    agreement_id, activity_id = await _ready(api)
    token, script = _leftovers()
    await run_script(api, activity_id, script[:1])
    await api.ok("POST", f"{MARKET}/agreements/{agreement_id}/terminate", json_body={})
    assert await _gone(token), _running(token)


async def test_processes_die_when_the_devnet_stops(start_devnet, http) -> None:
    async with start_devnet(providers=1) as net:
        fast = Api(http, net.api_url, net.app_key)
        _, activity_id = await _ready(fast)
        token, script = _leftovers()
        await run_script(fast, activity_id, script)
        await _exec(fast, activity_id, [run(f"sleep {token}")])  # still running at the stop
        for _ in range(40):  # three left behind, one running (maybe under its shell)
            if len(_running(token)) >= 4:
                break
            await asyncio.sleep(0.05)
        assert len(_running(token)) >= 4
    # Stopping waits for the cleanup: nothing is left, at once.
    assert not _running(token)


async def _exec(api: Api, activity_id: str, commands: list) -> str:
    return await api.ok(
        "POST",
        f"{ACTIVITY}/activity/{activity_id}/exec",
        json_body={"text": json.dumps(commands)},
    )


async def test_terminate_command_stops_a_running_batch(api) -> None:
    """A terminate racing a running command wins: the exe-unit stays Initialized."""
    _, activity_id = await _ready(api)
    token = f"4243.{secrets.randbelow(10**6):06d}"
    slow = await _exec(api, activity_id, [run(f"sleep {token} & sleep 3; echo late")])
    await asyncio.sleep(0.2)
    reset = await run_script(api, activity_id, [{"terminate": {}}])
    assert reset[0]["result"] == "Ok"
    results = await api.ok(
        "GET", f"{ACTIVITY}/activity/{activity_id}/exec/{slow}", params={"timeout": 5}
    )
    assert results[-1]["result"] == "Error" and results[-1]["isBatchFinished"]
    assert "terminate" in results[-1]["message"]
    state = await api.ok("GET", f"{ACTIVITY}/activity/{activity_id}/state")
    assert state["state"] == ["Initialized", None]
    await asyncio.sleep(0.2)  # had the killed command changed the state, it would be now
    assert (await api.ok("GET", f"{ACTIVITY}/activity/{activity_id}/state"))["state"] == [
        "Initialized",
        None,
    ]
    later = await run_script(api, activity_id, [run("echo after")])
    assert later[0]["message"] == "Activity is initialized - deploy() command is expected now"
    assert await _gone(token), _running(token)  # the backgrounded sleep went too
    again = await run_script(api, activity_id, [*DEPLOY_START, run("echo again")])
    assert again[-1]["stdout"] == "again\n"


SLOW_DEPLOY = Profile((Group(1, ProviderSpec(name="slowdeploy", deploy_sec=0.5)),))


async def test_destroy_stops_batches_that_are_not_running_a_process(start_devnet, http) -> None:
    """A deploy in progress ends with the activity, and does not recreate its directory."""
    async with start_devnet(profile=SLOW_DEPLOY) as net:
        fast = Api(http, net.api_url, net.app_key)
        agreement_id, _, _ = await agreement(fast)
        activity_id = await activity(fast, agreement_id)
        batch_id = await _exec(fast, activity_id, DEPLOY_START)
        await asyncio.sleep(0.1)
        await fast.ok("DELETE", f"{ACTIVITY}/activity/{activity_id}")
        results = await fast.ok(
            "GET", f"{ACTIVITY}/activity/{activity_id}/exec/{batch_id}", params={"timeout": 2}
        )
        assert results[0]["result"] == "Error" and results[0]["isBatchFinished"]
        exeunits = net.network.exeunits
        batch = exeunits.activities[activity_id].batches[batch_id]
        assert batch.task is not None and batch.task.done()
        await asyncio.sleep(0.7)  # past the end of the deploy that was cut short
        root = Path(exeunits.root) / activity_id
        assert not root.exists()


async def test_stopping_cancels_every_timer_and_task(start_devnet, http) -> None:
    async with start_devnet(providers=2) as net:
        fast = Api(http, net.api_url, net.app_key)
        terms = {
            "golem.com.scheme.payu.debit-note.interval-sec?": 60,
            "golem.com.scheme.payu.payment-timeout-sec?": 600,
            "golem.com.payment.debit-notes.accept-timeout?": 600,
        }
        agreement_id, _, _ = await agreement(fast, extra=terms)
        await activity(fast, agreement_id)
        network = net.network
        assert network is not None
        assert len(network.market._timers) > 0  # demand expiry, agreement expiry
    assert len(network.market._timers) == 0
    assert len(network.payments._timers) == 0
    assert len(network._timers) == 0
    assert not network._tasks
    assert not network.exeunits._cleanups


@pytest.mark.parametrize("command", ["/bin/ec\u0000ho"])
def test_nul_never_reaches_a_process(command: str) -> None:
    from golem_tasks.devnet.errors import BadRequest
    from golem_tasks.devnet.exescript import parse_script

    with pytest.raises(BadRequest, match="NUL"):
        parse_script(json.dumps([{"run": {"entry_point": command}}]))
