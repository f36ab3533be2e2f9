"""golem_tasks.images: point golem-core's image resolution at the devnet's repository."""

from __future__ import annotations

import pytest
from golem.payload import RepositoryVmPayload, VmPayload

from golem_tasks.images import IMAGE_REPO_ENV, resolve_payload

IMAGE = "9a3b5d67b0b27746283cb5f287c13eab1beaa12d92a9f536b747c7ae"


async def test_hash_only_payload_points_at_the_devnet(devnet, monkeypatch) -> None:
    monkeypatch.setenv(IMAGE_REPO_ENV, devnet.env()[IMAGE_REPO_ENV] + "/")
    payload = RepositoryVmPayload(image_hash=IMAGE)
    assert await resolve_payload(payload) is payload
    assert payload.package_url == f"hash:sha3:{IMAGE}:{devnet.api_url}/images/{IMAGE}.gvmi"
    properties, _ = await payload.build_properties_and_constraints()  # no SRV lookup any more
    assert properties["golem.srv.comp.task_package"] == payload.package_url


@pytest.mark.parametrize(
    "payload",
    [
        RepositoryVmPayload(image_hash=IMAGE, package_url="hash:sha3:x:http://elsewhere/x"),
        RepositoryVmPayload(image_hash=IMAGE, image_url="http://elsewhere/image"),
        RepositoryVmPayload(),
        VmPayload(package_url="hash:sha3:x:http://elsewhere/x"),
    ],
)
async def test_other_payloads_are_left_alone(devnet, monkeypatch, payload) -> None:
    monkeypatch.setenv(IMAGE_REPO_ENV, devnet.image_repo)
    before = repr(payload)
    await resolve_payload(payload)
    assert repr(payload) == before


async def test_unset_variable_changes_nothing(monkeypatch) -> None:
    monkeypatch.delenv(IMAGE_REPO_ENV, raising=False)
    payload = RepositoryVmPayload(image_hash=IMAGE)
    await resolve_payload(payload)
    assert payload.package_url is None
