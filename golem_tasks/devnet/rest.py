"""Request parsing and JSON responses shared by the API modules.

Every malformed input becomes a 400 with a message here, so handlers only see valid values.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

from aiohttp import web

from golem_tasks.devnet.clock import parse_timestamp
from golem_tasks.devnet.errors import BadRequest
from golem_tasks.devnet.jsontext import JsonError, parse_json
from golem_tasks.devnet.network import Network

NETWORK: web.AppKey[Network] = web.AppKey("network", Network)
APP_KEY: web.AppKey[str] = web.AppKey("app_key", str)
#: When the devnet started serving (naive UTC, as yagna writes such times): its release's
#: insertionTs, its app key's creation time.
STARTED: web.AppKey[str] = web.AppKey("started", str)
#: Longest hold of a long poll, whatever the client asks (golem-core gives up after 16 s).
MAX_POLL = 60.0
#: The contract's default for ``timeout`` (``pollTimeout`` and ``ackTimeout``).
DEFAULT_TIMEOUT = 5.0
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def respond(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=_dumps(data).encode(), status=status, content_type="application/json")


def no_content() -> web.Response:
    return web.Response(status=204)


def network(request: web.Request) -> Network:
    return request.app[NETWORK]


def body_error(request: web.Request, message: str) -> BadRequest:
    """A body that does not parse (yagna: plain text outside the market API; the devnet
    answers the contract's ErrorMessage everywhere)."""
    return BadRequest(message)


async def body_json(request: web.Request, *, required: bool = True) -> Any:
    """The JSON body; ``None`` for an empty body when not required."""
    raw = await request.read()
    if not raw.strip():
        if required:
            raise body_error(request, "Request body is required (JSON)")
        return None
    try:
        return parse_json(raw)
    except JsonError as exc:
        raise body_error(request, f"Json deserialize error: {exc}") from None


async def body_object(request: web.Request, *, required: bool = True) -> dict[str, Any]:
    data = await body_json(request, required=required)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise body_error(request, "Json deserialize error: expected a JSON object")
    return data


def query_error(message: str) -> BadRequest:
    """A query string that does not parse (yagna: plain text; here the contract's
    ErrorMessage)."""
    return BadRequest(f"Query deserialize error: {message}")


def query_float(request: web.Request, name: str, default: float | None) -> float | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise query_error(f"{name} must be a number, got {raw!r}") from None
    if math.isnan(value) or value < 0:
        raise query_error(f"{name} must be >= 0")
    return value


def query_timeout(
    request: web.Request, default: float = DEFAULT_TIMEOUT, cap: float = MAX_POLL
) -> float:
    """``timeout`` (seconds, >= 0), ``default`` when absent, at most ``cap``."""
    value = query_float(request, "timeout", default)
    assert value is not None
    return min(value, cap)


def query_int(
    request: web.Request, name: str, default: int | None, low: int = 0, high: int | None = None
) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        number = float(raw)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number != int(number):
        raise query_error(f"{name} must be a whole number, got {raw!r}")
    value = int(number)
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f">= {low}"
        raise BadRequest(f"Invalid {name} '{value}', should be {bounds}.")
    return value


def query_max_events(request: web.Request, name: str = "maxEvents") -> int:
    value = query_int(request, name, 10, low=1, high=100)
    assert value is not None
    return value


def query_timestamp(request: web.Request, name: str) -> datetime | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return parse_timestamp(raw)
    except ValueError:
        raise query_error(f"{name} must be an RFC 3339 date-time, got {raw!r}") from None


def reason_body(data: Any) -> dict[str, Any] | None:
    """An optional ``Reason`` body: an object with a string ``message``."""
    if data is None:
        return None
    if not isinstance(data, dict):
        raise BadRequest("Json deserialize error: Reason must be an object")
    message = data.get("message", "")
    if not isinstance(message, str):
        raise BadRequest("Json deserialize error: Reason.message must be a string")
    return data
