"""A loopback TCP proxy in front of a PostgreSQL unix socket that can go silent: once
frozen it forwards nothing either way and answers no new connection, yet closes nothing,
as a database host does when the link to it is cut."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import psycopg


class PgBlackhole:
    def __init__(self, dsn: str) -> None:
        params = psycopg.conninfo.conninfo_to_dict(dsn)
        self.socket = Path(str(params["host"])) / f".s.PGSQL.{params.get('port', 5432)}"
        self.params = params
        self.frozen = asyncio.Event()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []

    @property
    def dsn(self) -> str:
        params = {**self.params, "host": "127.0.0.1", "port": str(self.port)}
        return psycopg.conninfo.make_conninfo("", **params, sslmode="disable")

    async def __aenter__(self) -> PgBlackhole:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        if self.frozen.is_set():
            return  # accepted by the kernel, never answered
        up_reader, up_writer = await asyncio.open_unix_connection(self.socket)
        self._writers.append(up_writer)
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pump(source, sink))
            self._tasks.add(task)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while not self.frozen.is_set():
                data = await source.read(65536)
                if not data or self.frozen.is_set():
                    return
                sink.write(data)
                await sink.drain()
