"""Bad input to the run commands: one line that says what is wrong, exit status 2, and
nothing written (see docs/bad-input.md for the whole table)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import psycopg
import pytest

from tests.helpers import cli_env, run_cli
from tests.integration.pipeline_support import APP, Cli, devnet, env_for, rows, value
from tests.integration.test_cli_errors import assert_one_line_error
from tests.support.audit import audit_run

pytestmark = pytest.mark.timeout(240)


def run_count(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM tasks.run").fetchone()
        assert row is not None
        return row[0]


@pytest.mark.parametrize(
    ("command", "run_id", "fragment"),
    [
        ("supervise", "esc\x1b[2J", "control character ('\\x1b')"),
        ("run", "", "the run id is empty"),
        ("summary", "x" * 101, "101 characters long; at most 100"),
    ],
)
def test_bad_run_ids_are_refused(
    installed_dsn: str, command: str, run_id: str, fragment: str
) -> None:
    """Each command taking --run-id checks it (the rules: tests/unit/test_runid.py)."""
    args = [command, APP] if command in ("run", "supervise") else [command]
    env = cli_env(YAGNA_APPKEY="k", YAGNA_API_URL="http://127.0.0.1:9")
    result = run_cli(*args, "--run-id", run_id, "--dsn", installed_dsn, env=env)
    assert_one_line_error(result, fragment)
    assert run_count(installed_dsn) == 0


async def test_long_run_id_runs_to_the_end(installed_dsn: str, tmp_path: Path) -> None:
    """A 100-character id used to make every job's defer fail: agreements, no work, no end."""
    run_id = "a-long-descriptive-run-id-" + "x" * 74
    async with devnet(providers=2, seed=8) as net:
        env = env_for(net, installed_dsn, MULTIPLY_TASKS="5")
        cli = await Cli.start(
            "run", APP, "--workers", "1", "--run-id", run_id, env=env, log=tmp_path / "run.log"
        )
        assert await cli.wait(120) == 0, cli.output()
        await audit_run(net, installed_dsn, run_id)
    done = await rows(
        installed_dsn, "SELECT key FROM tasks.task WHERE run_id = %s AND status = 'done'", run_id
    )
    assert len(done) == 5


def dead_url() -> str:
    """A loopback URL where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("command", [["supervise", APP], ["worker"]])
def test_unreachable_yagna_is_one_line(installed_dsn: str, command: list[str]) -> None:
    env = cli_env(YAGNA_APPKEY="k", YAGNA_API_URL=dead_url())
    result = run_cli(*command, "--dsn", installed_dsn, env=env, timeout=60)
    assert_one_line_error(result, "cannot reach yagna at http://127.0.0.1:", "YAGNA_API_URL")
    assert run_count(installed_dsn) == 0


def test_missing_app_key_is_one_line(installed_dsn: str) -> None:
    env = cli_env(YAGNA_APPKEY="", YAGNA_API_URL=dead_url())
    result = run_cli("supervise", APP, "--dsn", installed_dsn, env=env, timeout=60)
    assert_one_line_error(result, "YAGNA_APPKEY is not set")
    assert run_count(installed_dsn) == 0


async def test_wrong_app_key_is_one_line(installed_dsn: str) -> None:
    async with devnet(providers=1, seed=9) as net:
        env = {**env_for(net, installed_dsn), "YAGNA_APPKEY": "not-the-key"}
        command = ["supervise", APP, "--run-id", "wrongkey"]
        result = await asyncio.to_thread(run_cli, *command, env=env, timeout=60)
        assert_one_line_error(result, "refused the app key (401)", "YAGNA_APPKEY")
    assert run_count(installed_dsn) == 0


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # pid (comm) state ppid ...: comm may hold spaces, so split after its ')'.
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def cmdline_of(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")


async def test_worker_children_get_no_secret_on_their_command_line(
    installed_dsn: str, tmp_path: Path
) -> None:
    secret = "s3cret-pw-on-argv"
    dsn = f"{installed_dsn} password={secret}"  # the embedded server trusts local users
    async with devnet(providers=1, seed=10) as net:
        env = env_for(net, installed_dsn)
        workers = await Cli.start(
            "worker", "--processes", "2", "--dsn", dsn, env=env, log=tmp_path / "w.log"
        )
        try:
            for _ in range(150):
                children = children_of(workers.proc.pid)
                if len(children) == 2:
                    break
                await asyncio.sleep(0.1)
            assert len(children) == 2, workers.output()
            # The children come up on that DSN: both register as procrastinate workers.
            for _ in range(300):
                registered = await rows(
                    installed_dsn, "SELECT id FROM procrastinate.procrastinate_workers"
                )
                if len(registered) >= 2:
                    break
                await asyncio.sleep(0.1)
            assert len(registered) >= 2, workers.output()
            for child in children:
                cmdline = cmdline_of(child)
                assert b"worker" in cmdline
                assert secret.encode() not in cmdline and b"--dsn" not in cmdline
        finally:
            await workers.stop()
        assert workers.proc.returncode == 0, workers.output()


REFUSE_RESULT_9 = """
CREATE FUNCTION tasks.refuse_result_9() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.result = '9'::jsonb THEN RAISE EXCEPTION 'result 9 refused by a test trigger'; END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_result_9 BEFORE UPDATE ON tasks.task
    FOR EACH ROW EXECUTE FUNCTION tasks.refuse_result_9();
"""


async def test_one_refused_result_among_concurrent_drivers_fails_only_its_task(
    installed_dsn: str, tmp_path: Path
) -> None:
    """Drivers of a worker process store results and claim in shared statements: task 5's
    NUL and task 9's result (refused by PostgreSQL itself) fail those tasks' attempts only;
    every other task is done at its first attempt."""
    with psycopg.connect(installed_dsn, autocommit=True) as conn:
        conn.execute(REFUSE_RESULT_9)
    async with devnet(providers=6, seed=12) as net:
        env = env_for(net, installed_dsn)
        cli = await Cli.start(
            "run",
            "tests/apps/one_bad.py",
            "--workers",
            "6",
            "--run-id",
            "one-bad",
            env=env,
            log=tmp_path / "run.log",
        )
        assert await cli.wait(150) == 1, cli.output()
        await audit_run(net, installed_dsn, "one-bad")
    tasks = await rows(
        installed_dsn,
        "SELECT key, status, result, attempts, error FROM tasks.task WHERE run_id = 'one-bad' "
        "ORDER BY position",
    )
    assert len(tasks) == 24
    for task in tasks:
        if task["key"] in ("5", "9"):
            assert (task["status"], task["attempts"]) == ("failed", 2), task
        else:
            assert (task["status"], task["result"], task["attempts"]) == (
                "done",
                int(task["key"]),
                1,
            ), task
    by_key = {task["key"]: task for task in tasks}
    assert "has a NUL character (\\u0000) in ['stdout']" in by_key["5"]["error"]
    assert by_key["9"]["error"].startswith(
        "its result could not be stored: RaiseException: result 9 refused by a test trigger"
    )


REFUSE_RESULT_3 = """
CREATE FUNCTION tasks.refuse_result_3() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.result = '3'::jsonb THEN RAISE EXCEPTION 'result 3 refused by a test trigger'; END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_result_3 BEFORE UPDATE ON tasks.task
    FOR EACH ROW EXECUTE FUNCTION tasks.refuse_result_3();
"""


async def test_results_and_errors_postgresql_refuses_end_as_failed_attempts(
    installed_dsn: str, tmp_path: Path
) -> None:
    """A NUL in a result or an error text used to crash the job over and over: new
    agreements hired for ever, no task ever done, the run never ended. Whatever else
    makes PostgreSQL refuse a result (here a trigger refuses task 3's) fails the attempt."""
    with psycopg.connect(installed_dsn, autocommit=True) as conn:
        conn.execute(REFUSE_RESULT_3)
    async with devnet(providers=4, seed=11) as net:
        env = env_for(net, installed_dsn)
        cli = await Cli.start(
            "run",
            "tests/apps/nul.py",
            "--workers",
            "2",
            "--run-id",
            "nul",
            env=env,
            log=tmp_path / "run.log",
        )
        assert await cli.wait(150) == 1, cli.output()
        await audit_run(net, installed_dsn, "nul")
    tasks = await rows(
        installed_dsn,
        "SELECT key, status, result, attempts, error FROM tasks.task WHERE run_id = 'nul' "
        "ORDER BY position",
    )
    assert [(t["key"], t["status"]) for t in tasks] == [
        ("0", "done"),
        ("1", "failed"),
        ("2", "failed"),
        ("3", "failed"),
        ("4", "failed"),
        ("5", "failed"),
    ]
    assert tasks[0]["result"] == 0
    assert tasks[3]["attempts"] == 2 and tasks[3]["error"].startswith(
        "its result could not be stored: RaiseException: result 3 refused by a test trigger"
    ), tasks[3]
    for task in tasks:
        if task["key"] in ("1", "4"):
            assert task["attempts"] == 2
            assert "its result could not be stored" not in task["error"]  # refused up front
            assert "has a NUL character (\\u0000) in ['stdout']" in task["error"], task
        elif task["key"] in ("2", "5"):
            assert task["attempts"] == 2
            assert task["error"] == f"RuntimeError: program said {task['key']}\\x00 and stopped"
    agreements = await value(
        installed_dsn, "SELECT count(*) FROM tasks.agreement WHERE run_id = 'nul'"
    )
    assert agreements <= 4
