"""``golem-tasks devnet`` as a real process: exports to eval, detach, profile errors."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time

import aiohttp

from golem_tasks.devnet.detached import READY, DevnetProcess
from tests.helpers import ROOT, cli_env, run_cli


def test_foreground_prints_exports_and_stops_on_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "golem_tasks", "devnet", "--port", "0", "--providers", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
        env=cli_env(),
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line.decode())
        if line.decode().startswith(READY):
            break
    exports = dict(
        shlex.split(line)[1].split("=", 1) for line in lines if line.startswith("export")
    )
    assert set(exports) >= {
        "YAGNA_API_URL",
        "YAGNA_APPKEY",
        "YAGNA_PAYMENT_NETWORK",
        "GOLEM_TASKS_IMAGE_REPO",
    }
    assert exports["YAGNA_API_URL"].startswith("http://127.0.0.1:")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0


def test_detach_then_kill(tmp_path) -> None:
    log = tmp_path / "devnet.log"
    result = run_cli(
        "devnet", "--detach", "--port", "0", "--providers", "1", "--log-file", str(log)
    )
    assert result.returncode == 0, result.stderr
    script = result.stdout + 'echo "$YAGNA_API_URL $GOLEM_DEVNET_PID"\n'
    url, pid = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, check=True
    ).stdout.split()
    try:
        assert url.startswith("http://127.0.0.1:")
        os.kill(int(pid), 0)  # alive
    finally:
        os.kill(int(pid), signal.SIGTERM)
    for _ in range(100):
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    assert "devnet up at" in log.read_text()


def test_bad_profile_is_a_user_error(tmp_path) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text("[[group]]\nfaults = {reject_proposal = 3}\n")
    result = run_cli("devnet", "--port", "0", "--profile", str(profile))
    assert result.returncode == 2
    assert "probability" in result.stderr and "Traceback" not in result.stderr


async def test_devnet_process_api() -> None:
    async with DevnetProcess(providers=2, seed=3, app_key="secret") as net:
        assert net.app_key == "secret"
        async with aiohttp.ClientSession() as session:
            headers = {"Authorization": "Bearer secret"}
            async with session.get(net.api_url + "/me", headers=headers) as response:
                assert response.status == 200


def test_busy_port_is_a_user_error() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("devnet", "--port", str(port), "--providers", "1")
    assert result.returncode == 2
    assert "cannot listen on 127.0.0.1" in result.stderr
