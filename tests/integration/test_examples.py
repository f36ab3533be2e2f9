"""The examples that do real work, end to end: real processes, PostgreSQL and a devnet."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import itertools
import os
import re
import signal
from pathlib import Path

import pytest

from golem_tasks.appmodule import load_app
from tests.integration.pipeline_support import Cli, devnet, env_for, rows, value
from tests.support.audit import audit_run

pytestmark = pytest.mark.timeout(400)


async def test_yacat_finds_every_password(installed_dsn: str, tmp_path: Path) -> None:
    """Two passwords of length 2 (keyspace 95 each, in parts of 50): every one is found
    by the part task whose chunk holds it, and results_cnt counts found passwords."""
    async with devnet(providers=3, seed=9) as net:
        env = env_for(
            net,
            installed_dsn,
            YACAT_LENGTH="2",
            YACAT_PASSWORDS="2",
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
        await audit_run(net, installed_dsn, "yacat")
        summary = await Cli.start("summary", "--run-id", "yacat", env=env, log=tmp_path / "s.log")
        assert await summary.wait() == 0, summary.output()
    # Follow-ups are counted with the others; the run ended once they were all done.
    assert "6 done, 0 failed" in summary.output(200)
    assert "(4 follow-ups)" in summary.output(200)
    assert await value(installed_dsn, "SELECT status FROM tasks.run WHERE id = 'yacat'") == (
        "finished"
    )
    yacat = load_app("examples/yacat.py").module
    hashed = list(itertools.islice(yacat.passwords("golem", 2), 2))
    tasks = await rows(
        installed_dsn,
        "SELECT t.key, t.data, t.result, t.status, p.key AS parent FROM tasks.task t "
        "LEFT JOIN tasks.task p ON p.id = t.parent_id WHERE t.run_id = 'yacat'",
    )
    assert {t["status"] for t in tasks} == {"done"}
    mains = {t["key"]: t for t in tasks if t["parent"] is None}
    parts = [t for t in tasks if t["parent"] is not None]
    assert sorted(mains) == ["0", "1"]
    assert all(t["result"] == {"keyspace": 95} for t in mains.values())
    assert sorted(t["key"] for t in parts) == sorted(
        f"{n}/part-{skip}" for n in range(2) for skip in (0, 50)
    )
    # The parts split each keyspace without overlap (--limit counts from --skip).
    assert (
        sorted((t["data"]["skip"], t["data"]["limit"]) for t in parts)
        == [(0, 50)] * 2 + [(50, 45)] * 2
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
    assert last == 2


async def test_compress_files_with_a_provider_dying_mid_task(
    installed_dsn: str, tmp_path: Path
) -> None:
    """Inputs up with SendFile, gzip on the provider, outputs down with DownloadFile. The
    cheapest provider (hired first) dies 3 s into its activity, in the middle of a task:
    that task is retried elsewhere and no partial output is left or counted."""
    inputs = tmp_path / "in"
    (inputs / "sub").mkdir(parents=True)
    originals = {}
    for n in range(6):
        name = f"sub/f{n}.txt" if n % 3 == 0 else f"f{n}.txt"
        data = (f"line {n} " * 2000 + "\n").encode() * (n + 1)
        (inputs / name).write_bytes(data)
        originals[name] = data
    output = tmp_path / "out"
    dying = {
        "name": "dying",
        "count": 1,
        "price_duration_hour": 0.0001,
        "faults": {"die_after_sec": 3.0, "die_probability": 1.0},
    }
    healthy = {"name": "healthy", "count": 2, "price_duration_hour": 0.01}
    async with devnet([dying, healthy], seed=12) as net:
        env = env_for(
            net,
            installed_dsn,
            COMPRESS_INPUT=str(inputs),
            COMPRESS_OUTPUT=str(output),
            COMPRESS_DELAY="1.2",
        )
        cli = await Cli.start(
            "run",
            "examples/compress_files.py",
            "--workers",
            "2",
            "--run-id",
            "gz",
            env=env,
            log=tmp_path / "run.log",
        )
        assert await cli.wait(240) == 0, cli.output()
        await audit_run(net, installed_dsn, "gz")
    tasks = await rows(
        installed_dsn,
        "SELECT key, status, result, attempts FROM tasks.task WHERE run_id = 'gz'",
    )
    assert {t["key"] for t in tasks} == set(originals)
    assert {t["status"] for t in tasks} == {"done"}
    for task in tasks:
        result = task["result"]
        path = Path(result["output"])
        assert path == output / f"{task['key']}.gz"
        body = await asyncio.to_thread(path.read_bytes)
        assert len(body) == result["size"]
        assert hashlib.sha256(body).hexdigest() == result["sha256"]
        assert gzip.decompress(body) == originals[task["key"]]
    # Exactly one output per input, nothing partial left behind.
    written = sorted(p.relative_to(output).as_posix() for p in output.rglob("*") if p.is_file())
    assert written == sorted(f"{name}.gz" for name in originals)
    # The dying provider really took a task down with it, and that task was retried.
    retried = [t for t in tasks if t["attempts"] > 1]
    assert retried, "no task was caught by the dying provider"
    died = await rows(
        installed_dsn,
        "SELECT act.status FROM tasks.activity act JOIN tasks.agreement ag "
        "ON ag.id = act.agreement_id WHERE act.run_id = 'gz' AND ag.provider_name LIKE 'dying%%'",
    )
    assert [a["status"] for a in died] == ["failed"]


def _gftp_servers_under(root_pid: int) -> list[int]:
    """Pids of devnet gftp servers descended from ``root_pid`` (found in /proc)."""
    parents: dict[int, int] = {}
    gftp: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = next(line for line in status.splitlines() if line.startswith("PPid:"))
        parents[int(entry.name)] = int(ppid.split()[1])
        if any(part.endswith(b"/gftp") for part in cmdline) and b"server" in cmdline:
            gftp.add(int(entry.name))
    found = []
    for pid in gftp:
        ancestor = parents.get(pid)
        while ancestor and ancestor != root_pid:
            ancestor = parents.get(ancestor)
        if ancestor == root_pid:
            found.append(pid)
    return found


async def test_gftp_killed_mid_upload_fails_the_attempt_clearly(
    installed_dsn: str, tmp_path: Path
) -> None:
    """The worker's gftp server dies while a provider downloads an input from it: that
    attempt fails with the transfer error, nothing hangs, and the retry succeeds."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    with (inputs / "big.bin").open("wb") as out:
        out.truncate(64 << 20)  # zeros: slow enough to catch mid-way, quick to gzip
    output = tmp_path / "out"
    async with devnet(providers=2, seed=13) as net:
        env = env_for(net, installed_dsn, COMPRESS_INPUT=str(inputs), COMPRESS_OUTPUT=str(output))
        cli = await Cli.start(
            "run",
            "examples/compress_files.py",
            "--workers",
            "1",
            "--run-id",
            "gftpkill",
            env=env,
            log=tmp_path / "run.log",
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 120
        assert net.network is not None
        workdir = net.network.workdir
        while not any(p.stat().st_size > 0 for p in workdir.glob("*/golem/input/in")):
            assert loop.time() < deadline and cli.proc.returncode is None, cli.output()
            await asyncio.sleep(0.01)
        killed = await asyncio.to_thread(_gftp_servers_under, cli.proc.pid)
        assert killed, "no gftp server found under the run"
        for pid in killed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        assert await cli.wait(180) == 0, cli.output()
        await audit_run(net, installed_dsn, "gftpkill")
    [task] = await rows(
        installed_dsn, "SELECT status, attempts, result FROM tasks.task WHERE run_id = 'gftpkill'"
    )
    assert task["status"] == "done" and task["attempts"] == 2
    [error] = await rows(
        installed_dsn, "SELECT message FROM tasks.error WHERE run_id = 'gftpkill' AND kind = 'task'"
    )
    # Caught uploading the input (GET from the gftp server), else downloading the output.
    pattern = r"Transfer error: (GET|PUT) gftp://127\.0\.0\.1:\d+/\w+ failed: "
    assert re.search(pattern, error["message"]), error["message"]
    body = await asyncio.to_thread((output / "big.bin.gz").read_bytes)
    assert len(gzip.decompress(body)) == 64 << 20
