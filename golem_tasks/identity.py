"""Which requestor a yagna daemon is (``GET /me``).

A run's agreements, activities and payments belong to the node that made them: a worker
talking to another yagna cannot drive them. The run records its supervisor's node id and
its jobs go to a queue named after it, which only workers of that node listen on.
"""

from __future__ import annotations

import asyncio
import logging
import re

import aiohttp

from golem_tasks.config import YagnaSettings
from golem_tasks.errors import UserError

logger = logging.getLogger(__name__)

TIMEOUT_S = 10.0
#: What a node id may look like here (it names a queue): yagna's are ``0x`` + 40 hex digits.
_NODE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")


class IdentityUnknown(UserError):
    """The daemon could not be asked, or did not answer with a node id."""


async def requestor_id(yagna: YagnaSettings) -> str:
    """The node id of the daemon at ``yagna.api_url``; one-line :class:`IdentityUnknown`."""
    url = f"{yagna.api_url.rstrip('/')}/me"
    headers = {"Authorization": f"Bearer {yagna.app_key}"}
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)) as session,
            session.get(url, headers=headers) as response,
        ):
            if response.status != 200:
                reason = "wrong app key (YAGNA_APPKEY)" if response.status == 401 else ""
                raise IdentityUnknown(
                    f"yagna at {yagna.api_url} answered GET /me with {response.status} "
                    f"{response.reason or ''} {reason}".strip()
                )
            body = await response.json(content_type=None)
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
        text = " ".join(str(exc).split()) or type(exc).__name__
        raise IdentityUnknown(f"cannot ask yagna at {yagna.api_url} who it is: {text}") from None
    return node_id_of(body, yagna.api_url)


def node_id_of(me: object, api_url: str) -> str:
    """The node id in a ``GET /me`` answer; :class:`IdentityUnknown` when it has none."""
    node_id = me.get("identity") if isinstance(me, dict) else None
    if not isinstance(node_id, str) or not _NODE_ID.match(node_id):
        raise IdentityUnknown(f"yagna at {api_url} answered GET /me without a node id")
    return node_id


async def wait_for_requestor_id(yagna: YagnaSettings, *, max_delay_s: float = 10.0) -> str:
    """:func:`requestor_id`, asked again with back-off until the daemon answers (a worker
    may start before its yagna, or ride out its restart)."""
    delay = 0.5
    said = ""
    while True:
        try:
            return await requestor_id(yagna)
        except IdentityUnknown as exc:
            if str(exc) != said:
                logger.warning("%s; asking again until it answers", exc)
                said = str(exc)
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_delay_s)


def mismatch(run_id: str, run_requestor: str, mine: str, api_url: str) -> str:
    """What a worker or supervisor says when a run belongs to another requestor."""
    return (
        f"run {run_id} belongs to requestor {run_requestor}, but the yagna at {api_url} is {mine}"
    )
