"""The examples that do real work, end to end: real processes, PostgreSQL and a devnet."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

import pytest

from golem_tasks.appmodule import load_app
from tests.integration.pipeline_support import Cli, devnet, env_for, rows, value

pytestmark = pytest.mark.timeout(400)


async def test_yacat_finds_every_password(installed_dsn: str, tmp_path: Path) -> None:
    """Three passwords of length 2 (keyspace 95 each, in parts of 50): every one is found
    by the part task whose chunk holds it, and results_cnt counts found passwords."""
    async with devnet(providers=3, seed=9) as net:
        env = env_for(
            net,
            installed_dsn,
            YACAT_LENGTH="2",
            YACAT_PASSWORDS="3",
            YACAT_CHUNK="50",
            YACAT_SEED="golem",
        )
        cli = await Cli.start(
            "run",
            "examples/yacat.py",
            "--workers",
            "2",
            "--run-id",
            "yacat",
            env=env,
            log=tmp_path / "run.log",
        )
        assert await cli.wait(360) == 0, cli.output()
    yacat = load_app("examples/yacat.py").module
    hashed = list(itertools.islice(yacat.passwords("golem", 2), 3))
    tasks = await rows(
        installed_dsn,
        "SELECT t.key, t.data, t.result, t.status, p.key AS parent FROM tasks.task t "
        "LEFT JOIN tasks.task p ON p.id = t.parent_id WHERE t.run_id = 'yacat'",
    )
    assert {t["status"] for t in tasks} == {"done"}
    mains = {t["key"]: t for t in tasks if t["parent"] is None}
    parts = [t for t in tasks if t["parent"] is not None]
    assert sorted(mains) == ["0", "1", "2"]
    assert all(t["result"] == {"keyspace": 95} for t in mains.values())
    assert sorted(t["key"] for t in parts) == sorted(
        f"{n}/part-{skip}" for n in range(3) for skip in (0, 50)
    )
    found: dict[str, list[str]] = {}
    for part in parts:
        password = part["result"]["password"]
        assert part["data"]["hash"] == mains[part["parent"]]["data"]["hash"]
        if password is not None:
            # Every found password is the one that was hashed.
            assert hashlib.sha256(password.encode()).hexdigest() == part["data"]["hash"]
            found.setdefault(part["parent"], []).append(password)
    assert found == {str(n): [password] for n, password in enumerate(hashed)}
    last = await value(
        installed_dsn,
        "SELECT results_cnt FROM tasks.results_history WHERE run_id = 'yacat' "
        "ORDER BY at DESC LIMIT 1",
    )
    assert last == 3
