"""``DevnetProcess``: the devnet in a child process, for benchmarks and multi-process tests.

Same attributes as :class:`~golem_tasks.devnet.runner.Devnet` (``api_url``, ``app_key``,
``env()``) and the same arguments except ``workdir``, ``recorder`` and ``retention`` (and a
profile must be a file), but the network runs in its own Python process (``golem-tasks
devnet``), so it has a CPU core of its own instead of sharing the caller's event loop::

    async with DevnetProcess(providers=20, seed=1, time_scale=10) as net:
        os.environ.update(net.env())
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

from golem_tasks.devnet.exports import APPKEY_ENV, READY, export_lines, parse_export

__all__ = ["READY", "DevnetProcess"]


class DevnetProcess:
    def __init__(
        self,
        providers: int = 5,
        seed: int = 1,
        port: int = 0,
        profile: str | Path | None = None,
        time_scale: float = 1.0,
        *,
        host: str = "127.0.0.1",
        app_key: str | None = None,
        payment_network: str | None = None,
        payment_driver: str | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        self.args = [
            "devnet",
            f"--providers={providers}",
            f"--seed={seed}",
            f"--port={port}",
            f"--time-scale={time_scale}",
            f"--host={host}",
        ]
        if profile is not None:
            self.args.append(f"--profile={profile}")
        # Through the environment: the command line is readable by every local user.
        self._child_env = {**os.environ}
        self._child_env.pop(APPKEY_ENV, None)
        if app_key is not None:
            self._child_env[APPKEY_ENV] = app_key
        if payment_network is not None:
            self.args.append(f"--payment-network={payment_network}")
        if payment_driver is not None:
            self.args.append(f"--payment-driver={payment_driver}")
        self.start_timeout = start_timeout
        self._env: dict[str, str] = {}
        self._process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> DevnetProcess:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.stop()

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "golem_tasks",
            *self.args,
            stdout=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL,
            env=self._child_env,
        )
        try:
            await asyncio.wait_for(self._read_exports(), self.start_timeout)
        except BaseException:
            await self.stop()
            raise

    async def _read_exports(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        while True:
            line = (await self._process.stdout.readline()).decode()
            if not line:
                raise RuntimeError("the devnet process exited before it was ready")
            if line.startswith(READY):
                return
            export = parse_export(line)
            if export is not None:
                self._env[export[0]] = export[1]

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 10)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    @property
    def api_url(self) -> str:
        return self._env["YAGNA_API_URL"]

    @property
    def app_key(self) -> str:
        return self._env["YAGNA_APPKEY"]

    def env(self) -> dict[str, str]:
        return dict(self._env)

    def export_lines(self) -> str:
        return export_lines(self._env)
