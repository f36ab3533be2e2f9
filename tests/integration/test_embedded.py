"""The embedded PostgreSQL: started on first use, once, and shared by every process."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg

from tests.helpers import ROOT, cli_env, run_cli


def test_two_processes_asking_at_once_start_it_once() -> None:
    home = Path(tempfile.mkdtemp(prefix="gt-home-"))
    env = cli_env(GOLEM_TASKS_HOME=str(home))
    try:
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "golem_tasks", "install"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                cwd=ROOT,
            )
            for _ in range(2)
        ]
        outputs = [proc.communicate(timeout=180) for proc in procs]
        assert [proc.returncode for proc in procs] == [0, 0], outputs
        starts = [err.count("starting embedded PostgreSQL") for _, err in outputs]
        assert sorted(starts) == [0, 1], outputs
        status = run_cli("db", "status", env=env)
        assert "running (pid" in status.stdout
        # Without --listen: the unix socket only, no password, nothing for other hosts.
        assert "listening on" not in status.stdout and "other hosts" not in status.stdout
        assert not (home / "pg-password").exists()
        dsn = status.stdout.split("DSN: ", 1)[1].strip()
        with psycopg.connect(dsn) as conn:
            found = conn.execute("SELECT to_regclass('tasks.task') IS NOT NULL").fetchone()
            assert found == (True,)
        # A later command connects to the running server instead of starting another.
        again = run_cli("install", env=env)
        assert again.returncode == 0 and "up to date" in again.stdout
        assert "starting embedded" not in again.stderr
    finally:
        stopped = run_cli("db", "stop", env=env)
        shutil.rmtree(home, ignore_errors=True)
    assert "stopped" in stopped.stdout


def test_libpq_environment_is_used_instead_of_embedded(fresh_dsn: str) -> None:
    params = psycopg.conninfo.conninfo_to_dict(fresh_dsn)
    home = Path(tempfile.mkdtemp(prefix="gt-home-"))
    env = cli_env(
        GOLEM_TASKS_HOME=str(home),
        PGHOST=str(params["host"]),
        PGPORT=str(params["port"]),
        PGUSER=str(params["user"]),
        PGDATABASE=str(params["dbname"]),
    )
    try:
        result = run_cli("install", env=env)
        assert result.returncode == 0, result.stderr
        assert not (home / "pgdata").exists()
    finally:
        shutil.rmtree(home, ignore_errors=True)
