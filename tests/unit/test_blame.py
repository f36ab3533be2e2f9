"""Which failures are our own daemon's (waited out) and which are the provider's (blamed)."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from ya_activity.exceptions import ApiException

from golem_tasks.retry import our_side


def api_error(status: int, body: str = "") -> ApiException:
    exc = ApiException(status=status, reason="x")
    exc.body = body
    return exc


@pytest.mark.parametrize(
    "exc",
    [
        aiohttp.ClientConnectionError("Cannot connect to host 127.0.0.1:7465"),
        aiohttp.ServerDisconnectedError(),
        ConnectionRefusedError(),
        asyncio.TimeoutError(),
        api_error(401, '{"message": "Invalid application key"}'),
        api_error(403),
        api_error(429),
        api_error(500, '{"message": "database is locked"}'),
        api_error(503),
    ],
)
def test_our_side(exc: BaseException) -> None:
    assert our_side(exc)


@pytest.mark.parametrize(
    "exc",
    [
        api_error(500, "GSB error: remote service at /net/0xabc failed: connection reset"),
        api_error(500, f"provider 0x{'ab' * 20} did not answer"),
        api_error(400, "Agreement is not Approved. Current state: Terminated"),
        api_error(404, "Agreement not found"),
        RuntimeError("command failed: exit 3"),
    ],
)
def test_the_providers_side(exc: BaseException) -> None:
    assert not our_side(exc)


def test_causes_are_followed() -> None:
    try:
        try:
            raise aiohttp.ClientConnectionError("refused")
        except aiohttp.ClientError as inner:
            raise RuntimeError("the app wrapped it") from inner
    except RuntimeError as outer:
        assert our_side(outer)
