"""Identity (``GET /me``), version (``GET /version/get``, no app key needed, as in yagna)
and Golem's image repository, served beside the yagna API.

golem-core resolves ``RepositoryVmPayload(image_hash=...)`` through the image repository:
``GET <repo>/image.<hash>.link`` answers the image's URL as plain text, and that URL answers
``HEAD``. The devnet serves both for any hex hash (its providers do not run real images), so
an app that names only an image hash runs unchanged once resolution points here (see
:mod:`golem_tasks.images`). These endpoints need no app key, like the public repository.
"""

from __future__ import annotations

import re

from aiohttp import web

from golem_tasks.devnet.errors import NotFound
from golem_tasks.devnet.rest import STARTED, network, respond

_HASH = re.compile(r"^[0-9a-fA-F]{8,128}$")
PUBLIC_PREFIXES = ("/image.", "/images/")
#: Paths answered without the app key, as yagna answers them.
PUBLIC_PATHS = frozenset({"/version/get"})
#: The yagna release the devnet answers as (golem-js checks for a recent enough one): the
#: one its answers are compared with (tests/conformance).
YAGNA_VERSION = {
    "version": "0.17.6",
    "name": "v0.17.6 (golem-tasks devnet)",
    "seen": True,
    "releaseTs": "2026-03-13T00:00:00",
}


async def identity(request: web.Request) -> web.Response:
    return respond(network(request).identity())


async def version(request: web.Request) -> web.Response:
    started = request.app[STARTED]
    current = {**YAGNA_VERSION, "insertionTs": started, "updateTs": started}
    # yagna adds "pending": null; the contract's YagnaVersionInfo is not nullable, and a
    # client reads an absent pending as it reads null.
    return respond({"current": current})


def _hash(request: web.Request) -> str:
    image_hash = request.match_info["image_hash"]
    if not _HASH.match(image_hash):
        raise NotFound(f"image {image_hash} not found")
    return image_hash.lower()


def image_url(request: web.Request, image_hash: str) -> str:
    return f"{request.scheme}://{request.host}/images/{image_hash}.gvmi"


async def image_link(request: web.Request) -> web.Response:
    image_hash = _hash(request)
    # Verbatim text: golem-core uses the whole body as the URL, so no trailing newline.
    return web.Response(text=image_url(request, image_hash), content_type="text/plain")


async def image_file(request: web.Request) -> web.Response:
    image_hash = _hash(request)
    body = f"golem devnet placeholder image {image_hash}\n".encode()
    return web.Response(body=body, content_type="application/octet-stream")


def routes() -> list[web.RouteDef]:
    return [
        web.get("/me", identity),
        web.get("/version/get", version),
        web.get("/image.{image_hash}.link", image_link),
        web.get("/images/{image_hash}.gvmi", image_file),
    ]
