"""gftp on the devnet: unchanged golem-core SendFile/DownloadFile move real bytes both ways.

The ``gftp`` these tests run is the devnet's launcher on PATH (as ``Devnet.env()`` sets it),
spawned by golem-core itself; the provider side is the devnet's ``transfer`` command.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from golem.payload import RepositoryVmPayload
from golem.resources import Activity, BatchError, Deploy, DownloadFile, Run, SendFile, Start
from golem.utils.storage.gftp import GftpProvider
from semantic_version import Version
from ya_activity import models

from golem_tasks.devnet import Devnet
from golem_tasks.devnet.shims import install_shims
from golem_tasks.images import resolve_payload

logger = logging.getLogger(__name__)
HELLO_IMAGE = "9a3b5d67b0b27746283cb5f287c13eab1beaa12d92a9f536b747c7ae"
MB = 1 << 20


@pytest.fixture
async def net(start_devnet: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    async with start_devnet(providers=3, seed=11) as devnet:
        for key, value in devnet.env().items():
            monkeypatch.setenv(key, value)
        yield devnet


@contextlib.asynccontextmanager
async def activities(net: Devnet, count: int) -> AsyncIterator[list[Activity]]:
    """``count`` deployed and started activities, each on its own agreement."""
    from golem.node import GolemNode

    payload = await resolve_payload(RepositoryVmPayload(image_hash=HELLO_IMAGE))
    async with GolemNode(app_key=net.app_key, api_url=net.api_url) as golem:
        allocation = await golem.create_allocation(Decimal("5"))
        demand = await golem.create_demand(payload, allocations=[allocation])
        made: list[Activity] = []
        agreements = []
        proposals = demand.initial_proposals()
        while len(made) < count:
            proposal = await anext(proposals)
            theirs = await anext((await proposal.respond()).responses())
            agreement = await theirs.create_agreement()
            await agreement.confirm()
            assert await agreement.wait_for_approval()
            agreements.append(agreement)
            activity = await agreement.create_activity()
            batch = await activity.execute_commands(Deploy(), Start())
            await batch.wait(timeout=30)
            made.append(activity)
        try:
            yield made
        finally:
            for activity in made:
                with contextlib.suppress(Exception):
                    await activity.destroy()
            for agreement in agreements:
                with contextlib.suppress(Exception):
                    await agreement.terminate("done")


def random_file(path: Path, size: int) -> str:
    """A file of ``size`` random bytes; its sha256."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        left = size
        while left:
            chunk = os.urandom(min(MB, left))
            out.write(chunk)
            digest.update(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def run_batch(activity: Activity, *commands: Any, timeout: float = 60) -> Any:
    """Run a batch and wait for it *and* its commands' after-steps (downloads land then)."""
    batch = await activity.execute_commands(*commands)
    try:
        await batch.wait(timeout=timeout)
    finally:
        if batch.execute_after_task is not None:
            await asyncio.wait_for(asyncio.shield(batch.execute_after_task), timeout)
    return batch


# -- the JSON-RPC protocol, as golem-core and yagna's gftp speak it ------------------------


def rpc(tmp_path: Path, *requests: dict[str, Any]) -> list[dict[str, Any]]:
    """Send requests to a fresh ``gftp server`` (the devnet's launcher); its answers."""
    folder = install_shims(tmp_path / "bin")
    lines = "".join(
        json.dumps({"jsonrpc": "2.0", "id": n, **r}) + "\n" for n, r in enumerate(requests)
    )
    done = subprocess.run(
        [str(folder / "gftp"), "server"],
        input=lines.encode(),
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith(b"\r\n")
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def test_rpc_answers_as_yagna_gftp(tmp_path: Path) -> None:
    present = tmp_path / "present.txt"
    present.write_bytes(b"hello gftp")
    (tmp_path / "dir").mkdir()
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a directory")
    answers = rpc(
        tmp_path,
        {"method": "version", "params": {}},
        {"method": "publish", "params": {"files": [str(present)]}},
        {"method": "publish", "params": {"files": [str(tmp_path / "missing.bin")]}},
        {"method": "publish", "params": {"files": []}},
        {"method": "receive", "params": {"output_file": str(tmp_path / "out" / "new.bin")}},
        {"method": "receive", "params": {"output_file": str(blocker / "x.bin")}},
        {"method": "close", "params": {"urls": ["gftp://127.0.0.1:1/nothing-published"]}},
        {"method": "frobnicate", "params": {}},
        {"method": "shutdown", "params": {}},
    )
    version, published, missing, empty, received, bad_path, unknown, bad_method, bye = answers
    # golem-core uses `gftp close` only from 0.7.3 on.
    assert version["id"] == 0
    assert Version(version["result"].split()[0]) >= Version("0.7.3")
    [link] = published["result"]
    assert link["file"] == str(present)
    # The URL carries the content's SHA3-256, as yagna's does.
    assert link["url"].endswith("/" + hashlib.sha3_256(b"hello gftp").hexdigest())
    assert link["url"].startswith("gftp://127.0.0.1:")
    assert missing["error"] == {
        "code": -32000,
        "message": f"Can't open file {tmp_path / 'missing.bin'}.: "
        "No such file or directory (os error 2)",
    }
    assert empty["error"]["message"] == "Empty file list provided."
    assert received["result"]["file"] == str(tmp_path / "out" / "new.bin")
    assert (tmp_path / "out" / "new.bin").exists()  # created at receive, as yagna does
    assert bad_path["error"]["code"] == -32000
    assert bad_path["error"]["message"].startswith(
        f"Can't create destination directory for file: [{blocker / 'x.bin'}].: "
    )
    assert unknown["result"] == ["error"]
    assert bad_method["id"] is None and bad_method["error"]["code"] == -32600
    assert bye["result"] == "ok"


# -- bytes over the devnet -----------------------------------------------------------------


async def test_ten_megabytes_up_and_back_byte_exact(net: Devnet, tmp_path: Path) -> None:
    source = tmp_path / "up.bin"
    digest = random_file(source, 10 * MB)
    back = tmp_path / "back.bin"
    async with activities(net, 1) as [activity]:
        started = time.monotonic()
        await run_batch(activity, SendFile(str(source), "/golem/input/data.bin"))
        up_s = time.monotonic() - started
        batch = await run_batch(activity, Run("sha256sum /golem/input/data.bin"))
        assert batch.events[-1].stdout.split()[0] == digest
        await run_batch(activity, Run("cp /golem/input/data.bin /golem/output/copy.bin"))
        started = time.monotonic()
        await run_batch(activity, DownloadFile("/golem/output/copy.bin", str(back)))
        down_s = time.monotonic() - started
    assert back.stat().st_size == 10 * MB and sha256(back) == digest
    logger.warning("gftp on the devnet: up %.1f MB/s, down %.1f MB/s", 10 / up_s, 10 / down_s)


async def test_many_files_in_one_batch(net: Devnet, tmp_path: Path) -> None:
    count = 6
    inputs = []
    for n in range(count):
        path = tmp_path / f"in{n}.txt"
        path.write_text(f"file {n}\n" * (n + 1))
        inputs.append(path)
    out = tmp_path / "out"
    commands: list[Any] = [SendFile(str(p), f"/golem/input/{p.name}") for p in inputs]
    commands.append(
        Run(
            "for f in /golem/input/in*.txt; do "
            'tr a-z A-Z < "$f" > /golem/output/$(basename "$f" .txt).up; done'
        )
    )
    commands += [
        DownloadFile(f"/golem/output/in{n}.up", str(out / f"in{n}.up")) for n in range(count)
    ]
    async with activities(net, 1) as [activity]:
        batch = await run_batch(activity, *commands)
    assert [e.result for e in batch.events] == ["Ok"] * len(commands)
    for n, path in enumerate(inputs):
        assert (out / f"in{n}.up").read_text() == path.read_text().upper()


async def test_download_of_a_file_the_command_did_not_create_fails(
    net: Devnet, tmp_path: Path
) -> None:
    async with activities(net, 1) as [activity]:
        with pytest.raises(BatchError):
            await run_batch(
                activity,
                Run("echo made > /golem/output/made.txt"),
                DownloadFile("/golem/output/never.txt", str(tmp_path / "never.txt")),
            )
        batch = activity.children[-1]
        failed = batch.events[-1]
        assert failed.result == "Error"
        # What a provider's exe-unit answers (yagna adds no path; the devnet adds it).
        assert "Transfer error: IO error: No such file or directory (os error 2)" in str(
            failed.message
        )
        # The exe-unit is still usable.
        ok = await run_batch(activity, Run("cat /golem/output/made.txt"))
        assert ok.events[-1].stdout == "made\n"


async def test_a_closed_url_is_gone(net: Devnet, tmp_path: Path) -> None:
    source = tmp_path / "gone.txt"
    source.write_text("not for long")
    async with activities(net, 1) as [activity], GftpProvider() as gftp:
        published = await gftp.upload_file(source)
        url = published.download_url
        await gftp.release_source(published)  # gftp close
        script = [{"transfer": {"from": url, "to": "container:/golem/input/x"}}]
        batch = await activity.execute(models.ExeScriptRequest(text=json.dumps(script)))
        with pytest.raises(BatchError):
            await batch.wait(timeout=30)
        token = url.rsplit("/", 1)[1]
        assert f"GSB error: endpoint address not found: /public/gftp/{token}" in str(
            batch.events[-1].message
        )


async def test_two_activities_transfer_at_once(net: Devnet, tmp_path: Path) -> None:
    sizes = (3 * MB, 4 * MB)
    sources = [tmp_path / f"src{n}.bin" for n in range(2)]
    digests = [random_file(path, size) for path, size in zip(sources, sizes, strict=True)]

    async def round_trip(activity: Activity, n: int) -> str:
        back = tmp_path / f"back{n}.bin"
        await run_batch(
            activity,
            SendFile(str(sources[n]), "/golem/input/x.bin"),
            Run("cp /golem/input/x.bin /golem/output/y.bin"),
            DownloadFile("/golem/output/y.bin", str(back)),
        )
        return sha256(back)

    async with activities(net, 2) as pair:
        assert pair[0].id != pair[1].id
        got = await asyncio.gather(*(round_trip(a, n) for n, a in enumerate(pair)))
    assert got == digests


def gftp_servers() -> list[int]:
    """Pids of the devnet gftp servers this test process started (golem-core spawns them)."""
    mine = os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            status = (entry / "status").read_text()
        except OSError:
            continue
        parent = int(next(x for x in status.splitlines() if x.startswith("PPid:")).split()[1])
        is_gftp = any(part.endswith(b"/gftp") for part in cmdline) and b"server" in cmdline
        if is_gftp and parent in (mine, *_children(mine)):
            found.append(int(entry.name))
    return found


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


async def test_run_batch_lands_downloads_and_stops_gftp_servers(
    net: Devnet, tmp_path: Path
) -> None:
    """golem-core leaves each transfer command's gftp server running (until garbage
    collection) and returns from batch.wait before a download is written; run_batch does
    neither."""
    from golem_tasks.files import run_batch as finished_batch

    before = set(gftp_servers())
    source = tmp_path / "in.txt"
    source.write_text("round and round\n")
    async with activities(net, 1) as [activity]:
        for n in range(2):
            back = tmp_path / f"back{n}.txt"
            back.write_text("an older file: golem-core then downloads via a temporary one")
            await finished_batch(
                activity,
                SendFile(str(source), "/golem/input/in.txt"),
                DownloadFile("/golem/input/in.txt", str(back)),
                timeout=30,
            )
            assert back.read_text() == "round and round\n"  # landed when the call returned
            assert set(gftp_servers()) - before == set()


def test_a_worker_host_gets_the_launchers_with_one_command(tmp_path: Path) -> None:
    """On a worker host other than the devnet's: eval the printed line, then `gftp` runs."""
    script = (
        f'eval "$({sys.executable} -m golem_tasks.devnet.shims {tmp_path / "bin"})"\n'
        'command -v gftp\necho \'{"jsonrpc":"2.0","id":7,"method":"version"}\' | gftp server\n'
    )
    done = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=30, check=True
    )
    where, answer = done.stdout.splitlines()
    assert where == str(tmp_path / "bin" / "gftp")
    assert json.loads(answer)["id"] == 7


def test_rpc_upload_and_download_move_bytes(tmp_path: Path) -> None:
    """The provider-side methods: upload a file to a receive URL, download a published one."""
    source = tmp_path / "a.bin"
    digest = random_file(source, 3 * MB + 17)
    folder = install_shims(tmp_path / "bin")
    process = subprocess.Popen(
        [str(folder / "gftp"), "server"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    stdin, stdout = process.stdin, process.stdout
    assert stdin is not None and stdout is not None

    def call(method: str, **params: Any) -> dict[str, Any]:
        request = {"jsonrpc": "2.0", "id": method, "method": method, "params": params}
        stdin.write(json.dumps(request).encode() + b"\n")
        stdin.flush()
        return json.loads(stdout.readline())

    try:
        [link] = call("publish", files=[str(source)])["result"]
        target = call("receive", output_file=str(tmp_path / "b.bin"))["result"]
        assert call("upload", file=str(source), url=target["url"])["result"]["url"] == target["url"]
        assert sha256(tmp_path / "b.bin") == digest
        call("download", url=link["url"], output_file=str(tmp_path / "c" / "c.bin"))
        assert sha256(tmp_path / "c" / "c.bin") == digest
        assert call("close", urls=[link["url"], target["url"]])["result"] == ["ok", "ok"]
        gone = call("download", url=link["url"], output_file=str(tmp_path / "d.bin"))
        assert gone["error"]["message"].startswith("GSB error: endpoint address not found")
    finally:
        stdin.close()
        assert process.wait(timeout=10) == 0  # stdin closed: the server ends
