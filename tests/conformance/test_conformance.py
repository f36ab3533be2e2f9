"""The devnet answers the conformance cases as the recorded yagna daemon did.

The same requests as ``record_yagna`` ran against yagna 0.17.6 run against a devnet with
no providers (an offline yagna has none either); status codes, content types and response
shapes are compared field by field. A difference fails unless ``deviations.DEVIATIONS``
lists it with its reason, and every listed deviation must still occur and be documented in
``docs/devnet-deviations.md``, so the list stays honest.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from golem_tasks.devnet import Devnet
from tests.conformance.cases import body_shape, cases, run_cases, shape_differences
from tests.conformance.deviations import DEVIATIONS, Difference, allowed

HERE = Path(__file__).resolve().parent
RECORDING = HERE / "yagna-0.17.6.json"
DOC = HERE.parent.parent / "docs" / "devnet-deviations.md"


def recording() -> dict:
    return json.loads(RECORDING.read_text())


@pytest.fixture(scope="module")
async def offline_devnet() -> AsyncIterator[Devnet]:
    async with Devnet(providers=0, seed=1, port=0) as net:
        yield net


@pytest.fixture(scope="module")
async def differences(offline_devnet: Devnet) -> list[Difference]:
    recorded = {entry["name"]: entry for entry in recording()["cases"]}
    selected = cases()
    assert set(recorded) == {c.name for c in selected}, "re-record: make record-yagna"
    answers = await run_cases(offline_devnet.api_url, offline_devnet.app_key, selected)
    found: list[Difference] = []
    for case in selected:
        yagna, ours = recorded[case.name], answers[case.name]
        if yagna["status"] != ours.status:
            found.append(Difference(case.name, "status", f"{yagna['status']} -> {ours.status}"))
        if yagna["content_type"] != ours.content_type:
            found.append(
                Difference(
                    case.name,
                    "content_type",
                    f"{yagna['content_type'] or 'none'} -> {ours.content_type or 'none'}",
                )
            )
        for line in shape_differences(yagna["shape"], body_shape(ours)):
            found.append(Difference(case.name, "body", line))
    return found


def test_recording_covers_every_case() -> None:
    data = recording()
    assert data["yagna"].startswith("yagna 0.17.6")
    assert len(data["cases"]) == len(cases()) >= 150


async def test_devnet_answers_as_yagna_does(differences: list[Difference]) -> None:
    unexplained = [d for d in differences if not allowed(d)]
    assert not unexplained, "differences from yagna 0.17.6 not on the deviation list:\n" + (
        "\n".join(f"  {d.case}: {d.kind}: {d.detail}" for d in unexplained)
    )


async def test_every_listed_deviation_still_occurs(differences: list[Difference]) -> None:
    stale = [dev.key for dev in DEVIATIONS if not any(dev.matches(d) for d in differences)]
    assert not stale, f"deviations that no longer occur (remove them): {stale}"


def test_every_deviation_is_documented() -> None:
    text = DOC.read_text()
    missing = [dev.key for dev in DEVIATIONS if f"`{dev.key}`" not in text]
    assert not missing, f"deviations missing from {DOC.name}: {missing}"
