"""Retrying yagna calls that fail for passing reasons (5xx, timeouts, dropped connections).

golem-core retries only 408/504 and only on some calls; a daemon under load (or the
devnet's fault injection) also answers 5xx, and a database can restart: neither may end
a run of hours.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiohttp
import psycopg
from psycopg_pool import PoolTimeout

logger = logging.getLogger(__name__)

T = TypeVar("T")

NOT_IMPLEMENTED = 501


def is_transient(exc: BaseException) -> bool:
    """A failure that may pass: a 5xx/408/429 answer, a timeout, a dropped connection,
    or a database that is briefly unreachable."""
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        # 501: the daemon does not implement the call (yagna and debit-note rejection).
        return (status >= 500 and status != NOT_IMPLEMENTED) or status in (408, 429)
    return isinstance(
        exc,
        (
            asyncio.TimeoutError,
            aiohttp.ClientError,
            ConnectionError,
            psycopg.OperationalError,
            PoolTimeout,
        ),
    )


async def retrying(
    call: Callable[[], Awaitable[T]],
    *,
    what: str,
    attempts: int = 5,
    delay_s: float = 0.5,
) -> T:
    """Await ``call()``, again after transient failures, up to ``attempts`` times."""
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except Exception as exc:
            if attempt == attempts or not is_transient(exc):
                raise
            logger.debug("%s failed (%s), retrying (%d/%d)", what, exc, attempt, attempts)
            await asyncio.sleep(delay_s * attempt)
    raise AssertionError("unreachable")
