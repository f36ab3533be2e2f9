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


def is_transient(exc: BaseException) -> bool:
    """A failure that may pass: a 5xx/408/429 answer, a timeout, a dropped connection,
    or a database that is briefly unreachable."""
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        return status >= 500 or status in (408, 429)
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


#: How long a database that went away may take to come back before the work that needs it
#: gives up: longer than a PostgreSQL restart or a fail-over.
DB_PATIENCE_S = 300.0


async def patiently(
    call: Callable[[], Awaitable[T]],
    *,
    what: str,
    patience_s: float = DB_PATIENCE_S,
    max_delay_s: float = 5.0,
) -> T:
    """Await ``call()`` again after transient failures (back-off up to ``max_delay_s``)
    until it succeeds or ``patience_s`` have passed; one warning when it starts failing,
    one line when it works again."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience_s
    delay, failures = 0.25, 0
    while True:
        try:
            result = await call()
        except Exception as exc:
            if not is_transient(exc) or loop.time() + delay > deadline:
                raise
            failures += 1
            if failures == 1:
                logger.warning("%s failed (%s); retrying for up to %gs", what, exc, patience_s)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay_s)
            continue
        if failures:
            logger.warning("%s works again after %d failed tries", what, failures)
        return result
