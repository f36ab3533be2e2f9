"""The ``transfer`` command: copy between container paths, local files and HTTP URLs.

Supported locations: ``container:/path`` (inside the activity), ``file:///abs/path`` on the
devnet's machine, ``http(s)://`` URLs the devnet can reach (read with GET, written with
PUT), and ``gftp://host:port/token`` URLs made by the devnet's ``gftp`` (see
``devnet/gftp.py``), which are HTTP underneath: that is how golem-core's
``SendFile``/``DownloadFile`` reach the requestor's files, wherever it runs. Everything is
streamed in chunks, never held whole in memory.

Container paths are confined to the activity's directory. ``..`` is refused outright, and
symbolic links (which a command can create: ``ln -s /etc /golem/output/etc``) are checked
where they are followed: every directory on the way and the file itself are opened first,
then the opened file's real location must be inside the activity's directory. A symbolic
link as the destination file itself is refused. ``file://`` is *not* confined: it reads
and writes any file the devnet's user can (see the README).

Blocking file work runs through ``offload`` (a thread by default), so the event loop
keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO
from urllib.parse import unquote, urlparse

import aiohttp

CHUNK = 1 << 20
#: What a container path without a leading ``/`` is relative to.
WORKDIR = PurePosixPath("/golem/work")

Offload = Callable[..., Awaitable[Any]]


class TransferError(Exception):
    """A transfer that cannot be done; the message goes into the command result."""


@dataclass(frozen=True)
class LocalFile:
    """A file on this machine; confined to ``root`` when it stands for a container path."""

    path: Path
    root: Path | None = None

    def open_read(self) -> BinaryIO:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            # As a provider's exe-unit says it (plus the path).
            raise TransferError(
                f"IO error: No such file or directory (os error 2): {self.shown}"
            ) from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise TransferError(f"source is not a regular file: {self.shown}")
            if self.root is not None:
                _check_inside(fd, self.root, self.shown)
            os.set_blocking(fd, True)
            return os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise

    def open_write(self) -> BinaryIO:
        """Open for writing without truncating (the caller truncates once it is safe)."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC
        if self.root is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, flags, 0o644)
        else:
            fd = self._open_confined(flags | os.O_NOFOLLOW)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise TransferError(f"destination is not a regular file: {self.shown}")
            os.set_blocking(fd, True)
            return os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            raise

    def _open_confined(self, flags: int) -> int:
        assert self.root is not None
        parts = self.path.relative_to(self.root).parts
        directory = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for part in parts[:-1]:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=directory)
                inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=directory)
                os.close(directory)
                directory = inner
                _check_inside(directory, self.root, self.shown)
            try:
                return os.open(parts[-1], flags, 0o644, dir_fd=directory)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise TransferError(f"destination is a symbolic link: {self.shown}") from None
                raise
        finally:
            os.close(directory)

    @property
    def shown(self) -> str:
        """The path as the requestor wrote it (a container path is shown as one)."""
        if self.root is None:
            return str(self.path)
        return "/" + "/".join(self.path.relative_to(self.root).parts)


def _check_inside(fd: int, root: Path, shown: str) -> None:
    """Refuse an opened file or directory whose real location is outside ``root``."""
    real = os.readlink(f"/proc/self/fd/{fd}")
    base = os.path.realpath(root)
    if real != base and not real.startswith(base + os.sep):
        raise TransferError(f"container path leads outside the container: {shown}")


def container_file(root: Path, path: str) -> LocalFile:
    """``path`` inside the container whose root directory is ``root``."""
    posix = PurePosixPath(path)
    if not posix.is_absolute():
        posix = WORKDIR / posix
    parts = [p for p in posix.parts[1:] if p not in ("", ".")]
    if ".." in parts:
        raise TransferError(f"container path may not contain '..': {path}")
    if not parts:
        raise TransferError(f"container path names no file: {path}")
    return LocalFile(root.joinpath(*parts), root)


async def transfer(
    source: str,
    destination: str,
    container_root: Path,
    session: aiohttp.ClientSession,
    offload: Offload = asyncio.to_thread,
) -> int:
    """Copy ``source`` to ``destination``; returns the number of bytes copied."""
    src = _locate(source, container_root)
    dst = _locate(destination, container_root)
    if isinstance(src, LocalFile) and isinstance(dst, LocalFile):
        return await offload(_copy_file, src, dst)
    if isinstance(dst, LocalFile):
        return await _download(session, str(src), dst, offload)
    if isinstance(src, LocalFile):
        return await _upload(session, src, str(dst), offload)
    return await _relay(session, str(src), str(dst))


def _locate(location: str, container_root: Path) -> LocalFile | str:
    parsed = urlparse(location)
    scheme = parsed.scheme.lower()
    if scheme == "container":
        return container_file(container_root, location.split(":", 1)[1])
    if scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise TransferError(f"file URL must be local: {location}")
        return LocalFile(Path(unquote(parsed.path)))
    if scheme in ("http", "https"):
        return location
    if scheme == "gftp":
        if not parsed.port:
            raise TransferError(f"gftp URL names no devnet gftp server (host:port): {location}")
        return location
    raise TransferError(f"unsupported transfer protocol '{scheme or location}' in {location}")


def _copy_file(src: LocalFile, dst: LocalFile) -> int:
    with src.open_read() as reader, dst.open_write() as writer:
        if os.path.samestat(os.fstat(reader.fileno()), os.fstat(writer.fileno())):
            raise TransferError(f"source and destination are the same file: {src.shown}")
        writer.truncate(0)
        shutil.copyfileobj(reader, writer, CHUNK)
        return writer.tell()


def _open_truncated(dst: LocalFile) -> BinaryIO:
    writer = dst.open_write()
    writer.truncate(0)
    return writer


def _http(url: str) -> str:
    """Where a location is served: a devnet gftp URL is HTTP underneath."""
    return "http" + url[len("gftp") :] if url.lower().startswith("gftp:") else url


def _refused(method: str, url: str, status: int) -> TransferError:
    if url.lower().startswith("gftp:") and status == 404:
        # Closed or never published: the address no longer answers, as on yagna's bus.
        token = urlparse(url).path.lstrip("/")
        return TransferError(f"GSB error: endpoint address not found: /public/gftp/{token}")
    return TransferError(f"{method} {url} answered {status}")


def _failed(what: str, exc: Exception) -> TransferError:
    return TransferError(f"{what} failed: {type(exc).__name__}: {exc}")


async def _download(
    session: aiohttp.ClientSession, url: str, dst: LocalFile, offload: Offload
) -> int:
    try:
        async with session.get(_http(url)) as response:
            if response.status >= 400:
                raise _refused("GET", url, response.status)
            writer = await offload(_open_truncated, dst)
            try:
                size = 0
                async for chunk in response.content.iter_chunked(CHUNK):
                    await offload(writer.write, chunk)
                    size += len(chunk)
            finally:
                await offload(writer.close)
            return size
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise _failed(f"GET {url}", exc) from None


async def _chunks(reader: BinaryIO, offload: Offload) -> AsyncIterator[bytes]:
    while chunk := await offload(reader.read, CHUNK):
        yield chunk


async def _upload(
    session: aiohttp.ClientSession, src: LocalFile, url: str, offload: Offload
) -> int:
    reader = await offload(src.open_read)
    try:
        size = os.fstat(reader.fileno()).st_size
        headers = {"Content-Length": str(size)}
        async with session.put(
            _http(url), data=_chunks(reader, offload), headers=headers
        ) as response:
            if response.status >= 400:
                raise _refused("PUT", url, response.status)
        return size
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise _failed(f"PUT {url}", exc) from None
    finally:
        await offload(reader.close)


async def _relay(session: aiohttp.ClientSession, src: str, dst: str) -> int:
    try:
        async with session.get(_http(src)) as response:
            if response.status >= 400:
                raise _refused("GET", src, response.status)
            headers = {}
            if response.content_length is not None:
                headers["Content-Length"] = str(response.content_length)
            async with session.put(
                _http(dst), data=response.content.iter_chunked(CHUNK), headers=headers
            ) as answer:
                if answer.status >= 400:
                    raise _refused("PUT", dst, answer.status)
            return response.content_length or 0
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise _failed(f"transfer {src} -> {dst}", exc) from None
