"""Which requestor a yagna is (GET /me), asked of a real devnet over HTTP, and the queue
named after it."""

from __future__ import annotations

import asyncio
import re

import pytest

from golem_tasks import queue
from golem_tasks.config import YagnaSettings
from golem_tasks.identity import IdentityUnknown, requestor_id
from tests.integration.pipeline_support import devnet


def _settings(api_url: str, app_key: str) -> YagnaSettings:
    return YagnaSettings(api_url, app_key, "holesky", "erc20", "public")


async def test_two_devnets_are_two_requestors() -> None:
    async with devnet(providers=1, seed=1) as one, devnet(providers=1, seed=2) as two:
        first = await requestor_id(_settings(one.api_url, one.app_key))
        again = await requestor_id(_settings(one.api_url + "/", one.app_key))
        second = await requestor_id(_settings(two.api_url, two.app_key))
        assert one.network is not None
        assert first == one.network.requestor_id
    assert first.startswith("0x") and len(first) == 42
    assert first == again and first != second


async def test_wrong_key_or_no_daemon_is_one_line() -> None:
    async with devnet(providers=1, seed=1) as net:
        with pytest.raises(IdentityUnknown, match=r"401.*wrong app key"):
            await requestor_id(_settings(net.api_url, "not-the-key"))
        url = net.api_url
    with pytest.raises(IdentityUnknown, match=re.escape(f"cannot ask yagna at {url} who it is")):
        await requestor_id(_settings(url, "key"))


@pytest.mark.parametrize("node_id", ["0x" + "ab" * 20, "0x" + "ab" * 19 + "cd", "short"])
def test_queue_names_fit_procrastinate_channels(node_id: str) -> None:
    name = queue.requestor_queue(node_id)
    assert len(name) <= queue.MAX_QUEUE_NAME_BYTES == 40
    assert name.startswith("golem-tasks@" + node_id[:10])


def test_queue_names_of_ids_sharing_a_long_prefix_differ() -> None:
    a = queue.requestor_queue("0x" + "ab" * 19 + "cd")
    b = queue.requestor_queue("0x" + "ab" * 19 + "ce")
    assert a != b


async def test_standby_needs_an_existing_run(installed_dsn: str) -> None:
    from tests.helpers import cli_env, run_cli
    from tests.integration.pipeline_support import APP, value

    without = run_cli("supervise", APP, "--standby", "--dsn", installed_dsn)
    assert without.returncode == 2 and "--standby needs the --run-id" in without.stderr
    async with devnet(providers=1, seed=1) as net:
        env = cli_env(**net.env(), GOLEM_TASKS_DSN=installed_dsn)
        result = await asyncio.to_thread(
            run_cli, "supervise", APP, "--run-id", "nope", "--standby", env=env
        )
    assert result.returncode == 2, result.stderr
    assert "no run nope to stand by for" in result.stderr
    assert await value(installed_dsn, "SELECT count(*) FROM tasks.run") == 0


async def test_worker_refuses_the_queue_of_another_requestor(installed_dsn: str) -> None:
    from tests.helpers import cli_env, run_cli

    async with devnet(providers=1, seed=1) as net:
        env = cli_env(**net.env(), GOLEM_TASKS_DSN=installed_dsn)
        other = queue.requestor_queue("0x" + "00" * 20)
        result = await asyncio.to_thread(run_cli, "worker", "--queue", other, env=env)
    assert result.returncode == 2, result.stderr
    assert f"queue {other} belongs to another requestor" in result.stderr
