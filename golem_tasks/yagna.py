"""Asking our own yagna daemon who we are (``GET /me``) before a run writes anything.

A wrong ``YAGNA_API_URL`` or app key otherwise shows up only later, as tracebacks and a
run row left ``running``; one request up front turns it into one line the user can act on.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from golem_tasks.config import YagnaSettings
from golem_tasks.errors import UserError, describe

CHECK_TIMEOUT_S = 10.0


async def check_yagna(settings: YagnaSettings, *, timeout_s: float = CHECK_TIMEOUT_S) -> Any:
    """Our identity as yagna reports it; a :class:`UserError` when the daemon cannot be
    reached or refuses the app key."""
    if not settings.app_key:
        raise UserError("YAGNA_APPKEY is not set: export the app key of your yagna daemon")
    url = f"{settings.api_url.rstrip('/')}/me"
    headers = {"Authorization": f"Bearer {settings.app_key}"}
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session,
            session.get(url, headers=headers) as response,
        ):
            if response.status == 401:
                raise UserError(
                    f"yagna at {settings.api_url} refused the app key (401): set YAGNA_APPKEY "
                    "to a key of this daemon (yagna app-key list)"
                )
            if response.status != 200:
                text = " ".join((await response.text()).split())[:200]
                raise UserError(
                    f"yagna at {settings.api_url} answered GET /me with {response.status}: {text}"
                )
            return await response.json(content_type=None)
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
        raise UserError(
            f"cannot reach yagna at {settings.api_url} ({describe(exc)}): start the daemon "
            "or set YAGNA_API_URL"
        ) from None
