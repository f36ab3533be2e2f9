"""The embedded PostgreSQL serving other hosts: ``db start --listen`` over real TCP."""

from __future__ import annotations

import shlex
import shutil
import socket
import tempfile
from pathlib import Path

import psycopg
import pytest

from tests.helpers import cli_env, run_cli


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_listen_serves_tcp_with_a_password_only() -> None:
    home = Path(tempfile.mkdtemp(prefix="gt-listen-"))
    env = cli_env(GOLEM_TASKS_HOME=str(home))
    port = _free_port()
    try:
        started = run_cli("db", "start", "--listen", f"127.0.0.1:{port}", env=env)
        assert started.returncode == 0, started.stderr
        [line] = [ln for ln in started.stdout.splitlines() if ln.startswith("export ")]
        dsn = shlex.split(line.removeprefix("export GOLEM_TASKS_DSN="))[0]
        password = (home / "pg-password").read_text().strip()
        assert dsn == f"postgresql://postgres:{password}@127.0.0.1:{port}/golem_tasks"
        assert (home / "pg-password").stat().st_mode & 0o777 == 0o600

        # Other hosts: the printed DSN works over TCP, with liveness settings on the server.
        installed = run_cli("install", env=cli_env(GOLEM_TASKS_DSN=dsn, GOLEM_TASKS_HOME="/x"))
        assert installed.returncode == 0, installed.stderr
        with psycopg.connect(dsn) as conn:
            row = conn.execute(
                "SELECT inet_server_port(), current_setting('tcp_keepalives_idle'), "
                "current_setting('tcp_user_timeout'), "
                "to_regclass('tasks.task') IS NOT NULL"
            ).fetchone()
        assert row == (port, "3", "6000", True)
        # ... and nothing without the password, loopback included.
        for wrong in (dsn.replace(password, "not-it"), dsn.replace(f":{password}", "")):
            with pytest.raises(psycopg.OperationalError, match="password"):
                psycopg.connect(wrong, connect_timeout=5).close()

        status = run_cli("db", "status", env=env)
        assert f"listening on: 127.0.0.1:{port}" in status.stdout
        assert f"postgresql://postgres:***@127.0.0.1:{port}/golem_tasks" in status.stdout
        assert password not in status.stdout + status.stderr

        # Local processes still find it on its unix socket (named after the port).
        local = run_cli("install", env=env)
        assert local.returncode == 0 and "up to date" in local.stdout, local.stderr

        # A running server is not silently restarted elsewhere.
        moved = run_cli("db", "start", "--listen", f"127.0.0.1:{_free_port()}", env=env)
        assert moved.returncode == 2
        assert "stop it first" in moved.stderr and f"listening on 127.0.0.1:{port}" in moved.stderr
    finally:
        run_cli("db", "stop", env=env)
        shutil.rmtree(home, ignore_errors=True)
