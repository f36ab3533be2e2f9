"""Opening connections, with failures turned into one-line user errors."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from psycopg_pool.base import AttemptWithBackoff

from golem_tasks.config import describe_dsn, mask_password, with_tcp_liveness
from golem_tasks.db import migrate
from golem_tasks.db.types import Connection, Pool
from golem_tasks.errors import UserError

CONNECT_TIMEOUT_S = 10


def connection_error(dsn: str, exc: Exception) -> UserError:
    reason = " ".join(str(exc).split()) or type(exc).__name__
    return UserError(
        f"cannot connect to database {describe_dsn(dsn)}: {mask_password(reason, dsn)}"
    )


async def connect(dsn: str, *, autocommit: bool = False) -> Connection:
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
async def connection(dsn: str, *, autocommit: bool = False) -> AsyncIterator[Connection]:
    conn = await connect(dsn, autocommit=autocommit)
    async with conn:
        yield conn


class _CappedBackoff(AttemptWithBackoff):
    """psycopg_pool doubles the wait between reconnection attempts without a cap, so after
    a minute's outage a pool could stay empty for another minute with the server back."""

    MAX_DELAY_S = 5.0

    def update_delay(self, now: float) -> None:
        super().update_delay(now)
        self.delay = min(self.delay, self.MAX_DELAY_S)


_C = TypeVar("_C", bound="psycopg.AsyncConnection[Any]")


class RestartTolerantPool(AsyncConnectionPool[_C]):
    """A pool that reconnects within seconds of a restarted server coming back (generic:
    procrastinate's connector makes one of its own connections)."""

    async def _add_connection(
        self, attempt: AttemptWithBackoff | None, growing: bool = False
    ) -> None:
        if attempt is None:
            attempt = _CappedBackoff(timeout=self.reconnect_timeout)
        await super()._add_connection(attempt, growing=growing)


async def open_pool(dsn: str, *, max_size: int) -> Pool:
    """An open pool of autocommit, dict-row connections; a failure is a :class:`UserError`."""
    pool = RestartTolerantPool[Connection](
        with_tcp_liveness(dsn),
        kwargs={"row_factory": dict_row, "autocommit": True},
        min_size=1,
        max_size=max_size,
        open=False,
        # A restarted server leaves dead connections in the pool: test each before use.
        check=RestartTolerantPool.check_connection,
    )
    try:
        await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S + 5)
    except (psycopg.OperationalError, PoolTimeout) as exc:
        await pool.close()
        raise connection_error(dsn, exc) from None
    return pool


async def require_schema(conn: Connection, dsn: str) -> int:
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
