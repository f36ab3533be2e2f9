"""Support for end-to-end tests: golem-tasks as real processes against a devnet."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
from psycopg.rows import dict_row

from golem_tasks.devnet import Devnet
from golem_tasks.devnet.profile import parse_profile
from tests.helpers import ROOT, cli_env

APP = "tests/apps/multiply.py"


class Cli:
    """A `golem-tasks` process whose output goes to a log file."""

    def __init__(self, proc: asyncio.subprocess.Process, log: Path, args: tuple[str, ...]) -> None:
        self.proc = proc
        self.log = log
        self.args = args

    @classmethod
    async def start(cls, *args: str, env: dict[str, str], log: Path) -> Cli:
        handle = log.open("wb")
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "golem_tasks",
            *args,
            stdout=handle,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            cwd=ROOT,
        )
        handle.close()
        return cls(proc, log, args)

    async def wait(self, timeout: float = 120) -> int:
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except asyncio.TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise AssertionError(
                f"{self.args} did not end in {timeout}s:\n{self.output()}"
            ) from None

    def signal(self, sig: int = signal.SIGINT) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(sig)

    def output(self, lines: int = 60) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self.proc.wait(), 60)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()


@contextlib.asynccontextmanager
async def devnet(
    groups: list[dict[str, Any]] | None = None, **kwargs: Any
) -> AsyncIterator[Devnet]:
    profile = parse_profile({"groups": groups}) if groups else None
    async with Devnet(profile=profile, port=0, **kwargs) as net:
        yield net


def env_for(net: Devnet, dsn: str, **app_env: str) -> dict[str, str]:
    env = cli_env(**net.env(), GOLEM_TASKS_DSN=dsn, PYTHONUNBUFFERED="1")
    env.update({key: str(value) for key, value in app_env.items()})
    return env


async def rows(dsn: str, sql: str, *params: Any) -> list[dict[str, Any]]:
    async with await psycopg.AsyncConnection.connect(dsn, row_factory=dict_row) as conn:
        cur = await conn.execute(sql, params)  # test-only inline SQL
        return await cur.fetchall()


async def value(dsn: str, sql: str, *params: Any) -> Any:
    [row] = await rows(dsn, sql, *params)
    return next(iter(row.values()))


async def wait_for(dsn: str, sql: str, predicate: Any, timeout: float = 60, *params: Any) -> Any:
    """Poll a one-value query until ``predicate(value)`` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        current = await value(dsn, sql, *params)
        if predicate(current):
            return current
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting on {sql!r}: last value {current!r}")
        await asyncio.sleep(0.3)


async def unpaid_documents(net: Devnet) -> list[str]:
    """Debit notes and invoices the devnet's providers sent that are still only received."""
    headers = {"Authorization": f"Bearer {net.app_key}"}
    unpaid: list[str] = []
    async with aiohttp.ClientSession(headers=headers) as session:
        for kind, id_field in (("debitNotes", "debitNoteId"), ("invoices", "invoiceId")):
            after = "2000-01-01T00:00:00Z"
            while True:
                url = f"{net.api_url}/payment-api/v1/{kind}"
                params = {"afterTimestamp": after, "maxItems": "100"}
                async with session.get(url, params=params) as response:
                    assert response.status == 200, await response.text()
                    page = await response.json()
                unpaid += [f"{kind}/{doc[id_field]}" for doc in page if doc["status"] == "RECEIVED"]
                if len(page) < 100:
                    break
                after = max(doc["timestamp"] for doc in page)
    return unpaid
