"""The dashboard: a read-only web page of every run in the database, its JSON and /metrics.

One page with its own small script and no external assets (it works offline); it polls
the JSON endpoints, so a page left open follows a run for hours. The same page, with the
data frozen into it, is the ``report`` file.
"""

from __future__ import annotations

import json
import logging
import time
from importlib import resources
from typing import Any

from aiohttp import web
from psycopg_pool import AsyncConnectionPool

from golem_tasks.db import access
from golem_tasks.db.connect import open_pool
from golem_tasks.db.types import Connection
from golem_tasks.errors import UserError
from golem_tasks.monitor import metrics, views
from golem_tasks.monitor.snapshot import resolve_run_id, snapshot

logger = logging.getLogger(__name__)

#: How much of a run the page shows.
RUNS_LISTED = 50
ACTIVITIES = 50
ERRORS = 20
PROVIDERS = 200
TIMELINE_POINTS = 60

POOL = web.AppKey("pool", AsyncConnectionPool)
PAGE = web.AppKey("page", str)


def page(*, poll_s: float = 2.0, frozen: dict[str, Any] | None = None) -> str:
    """The page: live (polling the JSON endpoints) or with ``frozen`` data built in."""
    template = resources.files("golem_tasks.monitor").joinpath("page.html").read_text("utf-8")
    config = {"poll_ms": int(poll_s * 1000), "frozen": frozen}
    # The JSON sits in a <script> element: no "</" may end it early.
    text = json.dumps(config).replace("</", "<\\/")
    return template.replace("__CONFIG__", text)


async def run_list(
    conn: Connection, limit: int = RUNS_LISTED, also: str | None = None
) -> dict[str, Any]:
    """The most recent runs, and the run ``also`` (the one the page shows) when older."""
    rows = await access.all_rows(conn, "list_runs", limit=limit)
    if also and all(row["id"] != also for row in rows):
        row = await access.one(conn, "list_run", run_id=also)
        if row is not None:
            rows.append(row)
    return views.runs(rows)


async def run_view(conn: Connection, run_id: str) -> dict[str, Any]:
    snap = await snapshot(
        conn,
        run_id,
        activities=ACTIVITIES,
        errors=ERRORS,
        providers=PROVIDERS,
        timeline=TIMELINE_POINTS,
    )
    return views.dashboard(snap)


async def report(conn: Connection, run_id: str | None) -> str:
    """One self-contained HTML file of a run (the most recent one by default)."""
    resolved = await resolve_run_id(conn, run_id)
    view = await run_view(conn, resolved)
    row = await access.the_row(conn, "list_run", run_id=resolved)
    return page(frozen={"runs": [views.run_row(row)], "run": view})


def _json(data: Any) -> web.Response:
    return web.json_response(data, dumps=json.dumps, headers={"Cache-Control": "no-store"})


async def _index(request: web.Request) -> web.Response:
    return web.Response(
        text=request.app[PAGE], content_type="text/html", headers={"Cache-Control": "no-store"}
    )


async def _runs(request: web.Request) -> web.Response:
    async with request.app[POOL].connection() as conn:
        return _json(await run_list(conn, also=request.query.get("also")))


async def _run(request: web.Request) -> web.Response:
    run_id = request.match_info["run_id"]
    async with request.app[POOL].connection() as conn:
        try:
            return _json(await run_view(conn, run_id))
        except UserError as exc:
            raise web.HTTPNotFound(text=str(exc)) from None


async def _metrics(request: web.Request) -> web.Response:
    async with request.app[POOL].connection() as conn:
        data = await metrics.read(conn)
    return web.Response(
        body=metrics.exposition(data),
        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
    )


@web.middleware
async def _timed(request: web.Request, handler: Any) -> web.StreamResponse:
    start = time.perf_counter()
    response = await handler(request)
    logger.debug(
        "%s %s: %.0f ms", request.method, request.path, (time.perf_counter() - start) * 1e3
    )
    return response


def create_app(dsn: str, *, poll_s: float = 2.0, pool_size: int = 4) -> web.Application:
    """The dashboard's aiohttp application (GET only: it never writes)."""
    app = web.Application(middlewares=[_timed])
    app[PAGE] = page(poll_s=poll_s)

    async def pool_ctx(app: web.Application) -> Any:
        app[POOL] = await open_pool(dsn, max_size=pool_size)
        yield
        await app[POOL].close()

    app.cleanup_ctx.append(pool_ctx)
    app.router.add_get("/", _index)
    app.router.add_get("/api/runs", _runs)
    app.router.add_get("/api/runs/{run_id}", _run)
    app.router.add_get("/metrics", _metrics)
    return app
