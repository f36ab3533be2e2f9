"""Running named queries: ``await one(conn, "get_run", run_id=...)``.

Keeps call sites short while every statement stays in a ``.sql`` file with parameters.
"""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from golem_tasks.db.queries import queries
from golem_tasks.db.types import Connection, Row


def _params(params: dict[str, Any]) -> dict[str, Any]:
    """Dicts become jsonb; lists stay lists (PostgreSQL arrays): wrap JSON lists in Jsonb."""
    return {k: Jsonb(v) if isinstance(v, dict) else v for k, v in params.items()}


async def execute(conn: Connection, name: str, **params: Any) -> int:
    """Run a statement; return the number of rows it touched."""
    cur = await conn.execute(getattr(queries, name), _params(params))
    return cur.rowcount


async def one(conn: Connection, name: str, **params: Any) -> Row | None:
    cur = await conn.execute(getattr(queries, name), _params(params))
    return await cur.fetchone()


async def the_row(conn: Connection, name: str, **params: Any) -> Row:
    """A statement that always returns a row (an aggregate, an ``INSERT … RETURNING``)."""
    row = await one(conn, name, **params)
    if row is None:
        raise LookupError(f"query {name!r} returned no row")
    return row


async def all_rows(conn: Connection, name: str, **params: Any) -> list[Row]:
    cur = await conn.execute(getattr(queries, name), _params(params))
    return await cur.fetchall()
