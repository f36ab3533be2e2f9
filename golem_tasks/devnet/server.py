"""The aiohttp application: routes of every API, authentication, errors as JSON.

Middlewares, outermost first: an optional recorder (tests validate every response against
the OpenAPI contract), the error mapper (``ApiError`` and aiohttp's own 404/405 become
``{"message": ...}``; an unexpected exception is logged and answered 500), and the app-key
check (``Authorization: Bearer <key>``, or yagna's ``authToken`` query parameter; like yagna,
``/version/get`` needs none).
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from golem_tasks.devnet import api_activity, api_devnet, api_market, api_misc, api_payment
from golem_tasks.devnet.errors import ApiError
from golem_tasks.devnet.network import Network
from golem_tasks.devnet.rest import APP_KEY, NETWORK, STARTED, respond

logger = logging.getLogger(__name__)

#: ``recorder(method, path, status, body)``: body is the decoded JSON, or None.
Recorder = Callable[[str, str, int, Any], None]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, message: str) -> web.Response:
    return respond({"message": message}, status=status)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return _error(exc.status, exc.message)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error(exc.status, f"{exc.reason}: {request.method} {request.path}")
    except ConnectionResetError:  # the client went away (e.g. mid-stream)
        raise
    except Exception as exc:
        logger.exception("devnet bug while serving %s %s", request.method, request.path)
        return _error(500, f"devnet internal error: {type(exc).__name__}: {exc}")


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in api_misc.PUBLIC_PATHS or request.path.startswith(api_misc.PUBLIC_PREFIXES):
        return await handler(request)
    expected = request.app[APP_KEY]
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        token = request.query.get("authToken", "")
    # yagna's own words (yagna sends them as plain text; the contract's ErrorMessage wins).
    if not token:
        return _error(401, "Missing application key")
    if not hmac.compare_digest(token.strip().encode(), expected.encode()):
        return _error(401, "Invalid application key")
    return await handler(request)


def recording(recorder: Recorder) -> Callable[[web.Request, Handler], Awaitable[Any]]:
    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if not isinstance(response, web.Response):
            return response  # a stream (server-sent events) is not a JSON document
        body: Any = None
        if response.body is not None:
            raw = response.body
            if isinstance(raw, (bytes, bytearray)) and raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode("utf-8", errors="replace")
        recorder(request.method, request.path, response.status, body)
        return response

    return record


def build_app(network: Network, app_key: str, recorder: Recorder | None = None) -> web.Application:
    middlewares: list = [errors, authenticate]
    if recorder is not None:
        middlewares.insert(0, recording(recorder))
    app = web.Application(middlewares=middlewares, client_max_size=64 * 1024 * 1024)
    app[NETWORK] = network
    app[APP_KEY] = app_key
    # yagna writes these naive (UTC, no zone), like releaseTs.
    app[STARTED] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")
    app.add_routes(api_market.routes())
    app.add_routes(api_activity.routes())
    app.add_routes(api_payment.routes())
    app.add_routes(api_misc.routes())
    app.add_routes(api_devnet.routes())
    return app
