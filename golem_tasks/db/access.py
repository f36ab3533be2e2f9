"""Running named queries: ``await one(conn, "get_run", run_id=...)``.

Keeps call sites short while every statement stays in a ``.sql`` file with parameters.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from golem_tasks.db.queries import queries


def _params(params: dict[str, Any]) -> dict[str, Any]:
    """Dicts become jsonb; lists stay lists (PostgreSQL arrays): wrap JSON lists in Jsonb."""
    return {k: Jsonb(v) if isinstance(v, dict) else v for k, v in params.items()}


async def execute(conn: psycopg.AsyncConnection, name: str, **params: Any) -> int:
    """Run a statement; return the number of rows it touched."""
    cur = await conn.execute(getattr(queries, name), _params(params))
    return cur.rowcount


async def one(conn: psycopg.AsyncConnection, name: str, **params: Any) -> dict[str, Any] | None:
    cur = await conn.execute(getattr(queries, name), _params(params))
    return await cur.fetchone()


async def all_rows(conn: psycopg.AsyncConnection, name: str, **params: Any) -> list[dict[str, Any]]:
    cur = await conn.execute(getattr(queries, name), _params(params))
    return await cur.fetchall()
