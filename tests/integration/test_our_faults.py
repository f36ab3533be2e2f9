"""Our own side failing: our yagna daemon unreachable or refusing our key for a while.
Such failures are waited out; they never ban a provider and never wedge a run."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.integration.pipeline_support import APP, Cli, devnet, env_for, rows, value, wait_for
from tests.support.audit import audit_run
from tests.support.yagna_proxy import YagnaProxy

pytestmark = pytest.mark.timeout(300)


async def test_a_worker_whose_yagna_fails_for_a_while_bans_nobody(
    installed_dsn: str, tmp_path: Path
) -> None:
    async with devnet(providers=4, seed=12) as net:
        target = urlsplit(net.api_url)
        proxy = YagnaProxy(target.hostname or "127.0.0.1", target.port or 80)
        await proxy.start()
        try:
            env = env_for(net, installed_dsn, MULTIPLY_TASKS="20", MULTIPLY_SLEEP="0.5")
            worker = await Cli.start(
                "worker",
                "--concurrency",
                "4",
                env={**env, "YAGNA_API_URL": proxy.url},
                log=tmp_path / "worker.log",
            )
            sup = await Cli.start(
                "supervise",
                APP,
                "--workers",
                "3",
                "--run-id",
                "ours",
                env=env,
                log=tmp_path / "sup.log",
            )
            try:
                await wait_for(
                    installed_dsn,
                    "SELECT count(*) FROM tasks.task WHERE run_id = 'ours' AND status = 'done'",
                    lambda n: n >= 3,
                    120,
                )
                await proxy.set_mode("refuse")
                await asyncio.sleep(8)
                await proxy.set_mode("401")
                await asyncio.sleep(5)
                await proxy.set_mode("pass")
                assert await sup.wait(180) == 0, sup.output()
            finally:
                await sup.stop()
                await worker.stop()
        finally:
            await proxy.close()
        await audit_run(net, installed_dsn, "ours")
    tasks = await rows(
        installed_dsn,
        "SELECT key, status, result FROM tasks.task WHERE run_id = 'ours' ORDER BY position",
    )
    assert [(t["key"], t["status"], t["result"]) for t in tasks] == [
        (str(n), "done", n * 7) for n in range(20)
    ]
    failed = await rows(
        installed_dsn,
        "SELECT id, stop_reason FROM tasks.activity WHERE run_id = 'ours' AND status = 'failed'",
    )
    assert failed == []
    avoided = await rows(
        installed_dsn,
        "SELECT id, avoid_reason FROM tasks.agreement "
        "WHERE run_id = 'ours' AND avoid_reason IS NOT NULL",
    )
    assert avoided == []
    live = await value(
        installed_dsn,
        "SELECT count(*) FROM tasks.agreement WHERE run_id = 'ours' "
        "AND status IN ('pending', 'approved')",
    )
    assert live == 0
