"""Retrying yagna calls that fail for passing reasons (5xx, timeouts, dropped connections).

golem-core retries only 408/504 and only on some calls; a daemon under load (or the
devnet's fault injection) also answers 5xx, and a database can restart: neither may end
a run of hours.
"""

from __future__ import annotations

import asyncio
import logging
import re
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


#: How long a database that went away may take to come back before the work that needs it
#: gives up: longer than a PostgreSQL restart or a fail-over.
DB_PATIENCE_S = 300.0


async def patiently(
    call: Callable[[], Awaitable[T]],
    *,
    what: str,
    patience_s: float = DB_PATIENCE_S,
    max_delay_s: float = 5.0,
    transient: Callable[[BaseException], bool] = is_transient,
    quiet: bool = False,
) -> T:
    """Await ``call()`` again after transient failures (back-off up to ``max_delay_s``)
    until it succeeds or ``patience_s`` have passed; one warning when it starts failing,
    one line when it works again (none with ``quiet``)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience_s
    delay, failures = 0.25, 0
    while True:
        try:
            result = await call()
        except Exception as exc:
            if not transient(exc) or loop.time() + delay > deadline:
                raise
            failures += 1
            if failures == 1 and not quiet:
                logger.warning("%s failed (%s); retrying for up to %gs", what, exc, patience_s)
            else:
                logger.debug("%s failed again (%s)", what, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay_s)
            continue
        if failures and not quiet:
            logger.warning("%s works again after %d failed tries", what, failures)
        return result


#: Marks a daemon answer that is about a remote node (a provider), not about the daemon:
#: yagna reports failed calls to a provider as GSB errors naming ``/net/<node id>``.
_REMOTE = re.compile(r"/net/|0x[0-9a-fA-F]{40}")


def our_side(exc: BaseException) -> bool:
    """A failure of our own yagna daemon or of our link to it, not of the provider:
    no answer at all (refused, reset, timed out), our app key refused (401/403), the
    daemon busy (408/429), or a 5xx that does not name a remote node. Such failures are
    waited out; they never blame a provider. Causes are followed (apps wrap errors)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        status = getattr(current, "status", None)
        if isinstance(status, int):
            if status in (401, 403, 407, 408, 429):
                return True
            if status >= 500:
                text = f"{getattr(current, 'reason', '')} {getattr(current, 'body', '')}"
                return not _REMOTE.search(text)
            return False
        if isinstance(current, (aiohttp.ClientError, ConnectionError, asyncio.TimeoutError)):
            return True
        current = current.__cause__ or current.__context__
    return False
