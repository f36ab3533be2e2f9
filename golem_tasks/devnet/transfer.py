"""The ``transfer`` command: copy between container paths, local files and HTTP URLs.

Supported locations: ``container:/path`` (inside the activity, see the exe-unit's path
mapping), ``file:///abs/path`` on the devnet's machine, and ``http(s)://`` URLs the devnet
can reach (read with GET, written with PUT). gftp is not available: golem-core's
``SendFile``/``DownloadFile`` need the ``gftp`` binary on the requestor's side.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlparse

import aiohttp

CHUNK = 1 << 20


class TransferError(Exception):
    """A transfer that cannot be done; the message goes into the command result."""


async def transfer(
    source: str,
    destination: str,
    container_path: Callable[[str], Path],
    session: aiohttp.ClientSession,
) -> int:
    """Copy ``source`` to ``destination``; returns the number of bytes copied."""
    src_kind, src = _locate(source, container_path)
    dst_kind, dst = _locate(destination, container_path)
    if src_kind == "path" and dst_kind == "path":
        return await asyncio.to_thread(_copy_file, Path(src), Path(dst))
    if src_kind == "url" and dst_kind == "path":
        return await _download(session, str(src), Path(dst))
    if src_kind == "path" and dst_kind == "url":
        return await _upload(session, Path(src), str(dst))
    return await _relay(session, str(src), str(dst))


def _locate(location: str, container_path: Callable[[str], Path]) -> tuple[str, Path | str]:
    parsed = urlparse(location)
    scheme = parsed.scheme.lower()
    if scheme == "container":
        return "path", container_path(location.split(":", 1)[1])
    if scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise TransferError(f"file URL must be local: {location}")
        return "path", Path(unquote(parsed.path))
    if scheme in ("http", "https"):
        return "url", location
    raise TransferError(f"unsupported transfer protocol '{scheme or location}' in {location}")


def _copy_file(src: Path, dst: Path) -> int:
    if not src.is_file():
        raise TransferError(f"source file not found: {src}")
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    return dst.stat().st_size


async def _download(session: aiohttp.ClientSession, url: str, dst: Path) -> int:
    try:
        async with session.get(url) as response:
            if response.status >= 400:
                raise TransferError(f"GET {url} answered {response.status}")
            dst.parent.mkdir(parents=True, exist_ok=True)
            size = 0
            with dst.open("wb") as out:
                async for chunk in response.content.iter_chunked(CHUNK):
                    out.write(chunk)
                    size += len(chunk)
            return size
    except aiohttp.ClientError as exc:
        raise TransferError(f"GET {url} failed: {exc}") from None


async def _upload(session: aiohttp.ClientSession, src: Path, url: str) -> int:
    try:
        data = await asyncio.to_thread(src.read_bytes)
    except OSError as exc:
        raise TransferError(f"cannot read source file {src}: {exc.strerror or exc}") from None
    try:
        async with session.put(url, data=data) as response:
            if response.status >= 400:
                raise TransferError(f"PUT {url} answered {response.status}")
        return len(data)
    except aiohttp.ClientError as exc:
        raise TransferError(f"PUT {url} failed: {exc}") from None


async def _relay(session: aiohttp.ClientSession, src: str, dst: str) -> int:
    try:
        async with session.get(src) as response:
            if response.status >= 400:
                raise TransferError(f"GET {src} answered {response.status}")
            body = await response.read()
        async with session.put(dst, data=body) as response:
            if response.status >= 400:
                raise TransferError(f"PUT {dst} answered {response.status}")
        return len(body)
    except aiohttp.ClientError as exc:
        raise TransferError(f"transfer {src} -> {dst} failed: {exc}") from None
