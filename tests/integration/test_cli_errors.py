"""Bad input gets one line that says what is wrong, exit status 2, and nothing written."""

from __future__ import annotations

import psycopg
import pytest

from tests.helpers import run_cli


def assert_one_line_error(result, *fragments: str) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    line = lines[0]
    assert line.startswith("golem-tasks: error: ")
    for fragment in fragments:
        assert fragment in line, line
    return line


def test_unreachable_dsn_is_one_line_with_password_masked() -> None:
    dsn = "postgresql://alice:s3cr3t-pw@127.0.0.1:1/nowhere?connect_timeout=3"
    line = assert_one_line_error(run_cli("install", "--dsn", dsn), "cannot connect", "nowhere")
    assert "s3cr3t-pw" not in line


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://bob:hunter2@host:notaport/db",
        "host=localhost password=hunter2 dbname",
        "postgresql://bob:hunter2@[::1/db",
    ],
)
def test_malformed_dsn_is_one_line_with_password_masked(dsn: str) -> None:
    line = assert_one_line_error(run_cli("install", "--dsn", dsn), "malformed DSN")
    assert "hunter2" not in line


def test_malformed_dsn_in_environment_is_refused(fresh_dsn: str) -> None:
    from tests.helpers import cli_env

    result = run_cli("install", env=cli_env(GOLEM_TASKS_DSN="dbname=x port=="))
    assert_one_line_error(result, "malformed DSN")


def test_dsn_option_wins_over_environment(fresh_dsn: str) -> None:
    from tests.helpers import cli_env

    env = cli_env(GOLEM_TASKS_DSN="postgresql://nobody@127.0.0.1:1/x", PGHOST="127.0.0.1")
    result = run_cli("install", "--dsn", fresh_dsn, env=env)
    assert result.returncode == 0, result.stderr
    with psycopg.connect(fresh_dsn) as conn:
        assert conn.execute("SELECT to_regclass('tasks.run') IS NOT NULL").fetchone() == (True,)


def test_verbose_shows_details() -> None:
    result = run_cli("-v", "install", "--dsn", "postgresql://x@127.0.0.1:1/y?connect_timeout=3")
    assert result.returncode == 2
    assert "Traceback" in result.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["summary"],
        ["show"],
        ["results"],
        ["supervise", "examples/hello_world.py"],
        ["run", "examples/hello_world.py"],
        ["worker"],
    ],
)
def test_commands_need_the_schema(fresh_dsn: str, command: list[str]) -> None:
    from tests.helpers import cli_env

    env = cli_env(YAGNA_APPKEY="test-key")
    result = run_cli(*command, "--dsn", fresh_dsn, env=env)
    assert_one_line_error(result, "has no golem-tasks schema — run: golem-tasks install")
    with psycopg.connect(fresh_dsn) as conn:
        assert conn.execute("SELECT to_regclass('tasks.run') IS NULL").fetchone() == (True,)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["supervise", "no/such/app.py"], "not found"),
        (["supervise", "examples/hello_world.py", "--budget", "5"], "invalid budget"),
        (["run", "examples/hello_world.py", "--budget", "1/day"], "invalid budget"),
        (["supervise", "examples/hello_world_callables.py"], "missing execute_task"),
    ],
)
def test_bad_run_input_writes_nothing(installed_dsn: str, args: list[str], fragment: str) -> None:
    result = run_cli(*args, "--dsn", installed_dsn)
    assert result.returncode == 2, result.stderr
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr
    with psycopg.connect(installed_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM tasks.run").fetchone() == (0,)


def test_summary_without_runs_says_so(installed_dsn: str) -> None:
    assert_one_line_error(run_cli("summary", "--dsn", installed_dsn), "no runs yet")
