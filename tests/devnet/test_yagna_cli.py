"""The devnet's ``yagna`` command: on PATH through the devnet's environment, answering in
the output shapes recorded from yagna 0.17.6 (tests/conformance/yagna-0.17.6.json)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from golem_tasks.devnet import Devnet
from tests.conformance.cases import shape
from tests.conformance.record_yagna import sanitize
from tests.devnet.flows import DEPLOY_START, PAYMENT, Api, activity, agreement, allocation
from tests.devnet.flows import run_script as run_batch

RECORDING = Path(__file__).resolve().parent.parent / "conformance" / "yagna-0.17.6.json"
TERMS = {
    "golem.com.scheme.payu.debit-note.interval-sec?": 60,
    "golem.com.scheme.payu.payment-timeout-sec?": 90,
}
#: StatusResult, the JSON of ``yagna payment status`` (yagna's core/model, tag v0.17.6).
STAT = {"agreementsCount": "integer", "totalAmount": "string"}
NOTES = {"accepted": STAT, "confirmed": STAT, "requested": STAT}
STATUS_SHAPE = {
    "amount": "string",
    "block_datetime": "string",
    "block_number": "integer",
    "driver": "string",
    "gas": {"balance": "string", "currency_long_name": "string", "currency_short_name": "string"},
    "incoming": NOTES,
    "network": "string",
    "outgoing": NOTES,
    "reserved": "string",
    "token": "string",
}


@pytest.fixture(scope="module")
async def devnet() -> AsyncIterator[Devnet]:
    """A devnet of these tests' own: the session devnet's answers are checked against the
    OpenAPI contract, and the devnet's own API (what this command uses) is not in it."""
    async with Devnet(providers=0, seed=3, port=0) as net:
        yield net


async def yagna(net: Devnet, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run ``yagna`` by name, found on the PATH of the devnet's environment."""
    process = await asyncio.create_subprocess_exec(
        "yagna",
        *args,
        env={**os.environ, **net.env(), **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode() + err.decode()


def skeleton(text: str) -> str:
    """A table's layout without its column widths (values differ in length)."""
    return re.sub(r"─+", "─", re.sub(r" +", " ", text))


def recorded_cli() -> list[dict[str, Any]]:
    return json.loads(RECORDING.read_text())["cli"]


async def test_yagna_is_first_on_the_devnets_path(devnet: Devnet) -> None:
    path = devnet.env()["PATH"].split(os.pathsep)
    program = Path(path[0]) / "yagna"
    assert os.access(program, os.X_OK)
    assert f"export PATH={path[0]}{os.pathsep}" in devnet.export_lines()


@pytest.mark.parametrize(
    "entry",
    [e for e in recorded_cli() if e["args"][-2:] != ["--driver", "erc20"] and e["exit_code"] == 0],
    ids=lambda e: " ".join(e["args"]),
)
async def test_id_and_app_keys_as_yagna_prints_them(devnet: Devnet, entry: dict) -> None:
    status, out = await yagna(devnet, *entry["args"])
    assert status == 0, out
    network = devnet.network
    assert network is not None
    name = network.identity()["name"]
    ours = sanitize(
        out.replace(name, "autoconfigured"),  # yagna's name for an autoconfigured key
        {"app_key": devnet.app_key, "node_id": network.requestor_id},
    )
    if "json_shape" in entry:
        assert shape(json.loads(out)) == entry["json_shape"]
        assert ours == entry["stdout"]  # the same keys, order and indentation
    else:
        assert skeleton(ours) == skeleton(entry["stdout"])


async def test_offline_yagna_could_not_answer_payment_status() -> None:
    """Why payment status follows yagna's source instead of the recording."""
    entries = [e for e in recorded_cli() if e["args"][:2] == ["payment", "status"]]
    assert entries and all(e["exit_code"] != 0 for e in entries)


async def test_payment_status_reports_the_account(start_devnet, http) -> None:
    async with start_devnet(providers=1, time_scale=60.0) as net:
        api = Api(http, net.api_url, net.app_key)
        status, out = await yagna(net, "payment", "status", "--json")
        assert status == 0, out
        before = json.loads(out)
        assert shape(before) == STATUS_SHAPE
        assert (before["driver"], before["network"], before["token"]) == (
            "erc20",
            "holesky",
            "tGLM",
        )
        assert before["amount"] == "1000" and before["reserved"] == "0"

        session = uuid.uuid4().hex
        after = datetime.now(timezone.utc).isoformat()
        budget = await allocation(api, "2")
        agreement_id, _, _ = await agreement(api, extra=TERMS, session=session)
        await run_batch(api, await activity(api, agreement_id), DEPLOY_START)
        note = await _first_debit_note(api, after, session)
        await api.ok(
            "POST",
            f"{PAYMENT}/debitNotes/{note['debitNoteId']}/accept",
            json_body={
                "allocationId": budget["allocationId"],
                "totalAmountAccepted": note["totalAmountDue"],
            },
        )
        status, out = await yagna(net, "--json", "payment", "status", "--network", "holesky")
        assert status == 0, out
        now = json.loads(out)
        paid = Decimal(note["totalAmountDue"])
        assert paid > 0
        assert Decimal(now["amount"]) == 1000 - paid
        assert Decimal(now["reserved"]) == 2 - paid
        assert now["outgoing"]["accepted"] == {"totalAmount": str(paid), "agreementsCount": 1}
        assert now["outgoing"]["confirmed"] == now["outgoing"]["accepted"]
        assert Decimal(now["outgoing"]["requested"]["totalAmount"]) >= paid

        status, out = await yagna(net, "payment", "status")
        assert status == 0, out
        lines = out.splitlines()
        assert net.network is not None
        assert lines[:4] == [
            "",
            f"Status for account: {net.network.requestor_id}",
            "Payment Driver status: OK",
            "",
        ]
        assert [c.strip() for c in lines[5].strip("│").split("│")] == [
            "platform",
            "total amount",
            "reserved",
            "amount",
            "incoming",
            "outgoing",
            "gas",
        ]
        first_row = [c.strip() for c in lines[7].strip("│").split("│")]
        assert first_row[0] == "driver: erc20"
        assert first_row[1] == f"{1000 - paid:.4f} tGLM"
        assert first_row[3:6] == ["accepted", "0 tGLM", f"{paid} tGLM"]
        assert first_row[6] == "1.0000 tETH"


async def _first_debit_note(api: Api, after: str, session: str) -> dict[str, Any]:
    for _ in range(100):
        events = await api.ok(
            "GET",
            f"{PAYMENT}/debitNoteEvents",
            params={"afterTimestamp": after, "appSessionId": session, "timeout": 1},
        )
        if events:
            return await api.ok("GET", f"{PAYMENT}/debitNotes/{events[0]['debitNoteId']}")
    raise AssertionError("no debit note")


async def test_other_networks_and_commands_fail_as_yagna_does(devnet: Devnet) -> None:
    status, out = await yagna(devnet, "payment", "status", "--network", "polygon")
    assert status == 1 and "polygon is not configured" in out
    status, out = await yagna(devnet, "net", "status")
    assert status == 1 and "not provided by the devnet" in out
    status, out = await yagna(devnet, "id", "show", env={"YAGNA_APPKEY": ""})
    assert status == 1 and "YAGNA_APPKEY" in out


async def test_a_reader_that_stops_early_is_no_error(devnet: Devnet) -> None:
    """``yagna payment status | true``: the pipe is closed before anything is written."""
    process = await asyncio.create_subprocess_shell(
        "yagna payment status | true; echo ${PIPESTATUS[0]}",
        env={**os.environ, **devnet.env()},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        executable="/bin/bash",
    )
    out, err = await process.communicate()
    assert out.decode().strip() == "0" and b"Traceback" not in err, err.decode()


async def test_works_from_another_host_over_rest(devnet: Devnet) -> None:
    """Only YAGNA_API_URL and YAGNA_APPKEY are used: a wrong key is refused by the devnet."""
    status, out = await yagna(devnet, "id", "show", env={"YAGNA_APPKEY": "wrong"})
    assert status == 1 and "Invalid application key" in out and "401" in out
