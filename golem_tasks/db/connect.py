"""Opening connections, with failures turned into one-line user errors."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from golem_tasks.config import describe_dsn, mask_password, with_tcp_liveness
from golem_tasks.db import migrate
from golem_tasks.errors import UserError

CONNECT_TIMEOUT_S = 10


def connection_error(dsn: str, exc: Exception) -> UserError:
    reason = " ".join(str(exc).split()) or type(exc).__name__
    return UserError(
        f"cannot connect to database {describe_dsn(dsn)}: {mask_password(reason, dsn)}"
    )


async def connect(dsn: str, *, autocommit: bool = False) -> psycopg.AsyncConnection:
    """An async connection returning dict rows; a failure is a :class:`UserError`."""
    try:
        return await psycopg.AsyncConnection.connect(
            with_tcp_liveness(dsn),
            autocommit=autocommit,
            row_factory=dict_row,
            connect_timeout=CONNECT_TIMEOUT_S,
        )
    except psycopg.OperationalError as exc:
        raise connection_error(dsn, exc) from None


@contextlib.asynccontextmanager
async def connection(
    dsn: str, *, autocommit: bool = False
) -> AsyncIterator[psycopg.AsyncConnection]:
    conn = await connect(dsn, autocommit=autocommit)
    async with conn:
        yield conn


async def open_pool(dsn: str, *, max_size: int) -> AsyncConnectionPool:
    """An open pool of autocommit, dict-row connections; a failure is a :class:`UserError`."""
    pool = AsyncConnectionPool(
        with_tcp_liveness(dsn),
        kwargs={"row_factory": dict_row, "autocommit": True},
        min_size=1,
        max_size=max_size,
        open=False,
    )
    try:
        await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S + 5)
    except (psycopg.OperationalError, PoolTimeout) as exc:
        await pool.close()
        raise connection_error(dsn, exc) from None
    return pool


async def require_schema(conn: psycopg.AsyncConnection, dsn: str) -> int:
    """Refuse to go on without an up-to-date golem-tasks schema; return its version."""
    version = await migrate.current_version(conn)
    where = describe_dsn(dsn)
    if version is None:
        raise UserError(f"database {where} has no golem-tasks schema — run: golem-tasks install")
    latest = migrate.latest_version()
    if version < latest:
        raise UserError(
            f"database {where} has golem-tasks schema version {version}, this version needs "
            f"{latest} — run: golem-tasks install"
        )
    if version > latest:
        raise UserError(
            f"database {where} has golem-tasks schema version {version}, newer than this "
            f"golem-tasks knows ({latest}) — upgrade golem-tasks"
        )
    return version
