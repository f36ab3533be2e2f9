"""App modules: loading by path or name, and one clear line for every wrong shape."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from golem_tasks.appmodule import load_app
from golem_tasks.errors import UserError

GOOD = """
from golem.payload import RepositoryVmPayload
PAYLOAD = RepositoryVmPayload("abc")
def get_tasks(run_id):
    return range(3)
async def execute_task(activity, data):
    return data
"""


def write(tmp_path: Path, body: str, name: str = "app.py") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return str(path)


def test_good_module_loads_with_defaults(tmp_path: Path) -> None:
    app = load_app(write(tmp_path, GOOD))
    assert app.max_attempts == 3 and app.task_timeout_s == 300
    assert app.setup_activity is None and app.results_cnt is None
    assert Path(app.spec).is_absolute()


def test_per_app_defaults(tmp_path: Path) -> None:
    app = load_app(write(tmp_path, GOOD + "\nTASK_TIMEOUT = 12.5\nMAX_ATTEMPTS = 5\n"))
    assert (app.task_timeout_s, app.max_attempts) == (12.5, 5)


def test_module_by_name() -> None:
    app = load_app("examples.hello_world")
    assert app.name == "examples.hello_world"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (GOOD.replace('PAYLOAD = RepositoryVmPayload("abc")', ""), "missing PAYLOAD"),
        (GOOD.replace('RepositoryVmPayload("abc")', '"abc"'), "PAYLOAD must be a golem-core"),
        (GOOD.replace("def get_tasks(run_id)", "def other(run_id)"), "missing get_tasks"),
        (GOOD.replace("def get_tasks(run_id)", "def get_tasks()"), "get_tasks must be"),
        (GOOD.replace("async def execute_task", "def execute_task"), "async def"),
        (GOOD.replace("(activity, data)", "(activity)"), "execute_task must be"),
        (GOOD.replace("async def execute_task", "async def run_task"), "missing execute_task"),
        (GOOD + "\nsetup_activity = 3\n", "setup_activity must be"),
        (GOOD + "\ndef results_cnt(run_id):\n    return 1\n", "results_cnt must be"),
        (GOOD + "\ndef on_result(run_id, key, data):\n    return []\n", "on_result must be"),
        (GOOD + "\nTASK_TIMEOUT = 0\n", "TASK_TIMEOUT must be"),
        (GOOD + "\nMAX_ATTEMPTS = 1.5\n", "MAX_ATTEMPTS must be"),
        ("raise RuntimeError('boom')\n", "failed to import: RuntimeError: boom"),
        ("def broken(:\n", "failed to import: SyntaxError"),
    ],
)
def test_wrong_shapes_are_named(tmp_path: Path, body: str, fragment: str) -> None:
    with pytest.raises(UserError) as info:
        load_app(write(tmp_path, body))
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_callable_style_needs_no_execute_task(tmp_path: Path) -> None:
    body = GOOD.replace("async def execute_task(activity, data):\n    return data\n", "")
    assert load_app(write(tmp_path, body), require_execute_task=False).execute_task is None
    with pytest.raises(UserError, match="missing execute_task"):
        load_app(write(tmp_path, body, "app2.py"))


@pytest.mark.parametrize("spec", ["no/such/file.py", "no_such_module_xyz"])
def test_missing_module(spec: str) -> None:
    with pytest.raises(UserError, match="not found"):
        load_app(spec)


async def test_on_result_sync_or_async_gives_a_list(tmp_path: Path) -> None:
    app = load_app(write(tmp_path, GOOD))
    assert app.on_result is None and await app.follow_ups("r", "k", {}, 1) == []
    sync = (
        GOOD + "\ndef on_result(run_id, key, data, n):\n    return ({'n': i} for i in range(n))\n"
    )
    assert await load_app(write(tmp_path, sync, "s.py")).follow_ups("r", "k", {}, 2) == [
        {"n": 0},
        {"n": 1},
    ]
    coro = GOOD + "\nasync def on_result(run_id, key, data, result):\n    return None\n"
    assert await load_app(write(tmp_path, coro, "c.py")).follow_ups("r", "k", {}, 2) == []
    wrong = GOOD + "\ndef on_result(run_id, key, data, result):\n    return {'n': 1}\n"
    with pytest.raises(TypeError, match="iterable of task data"):
        await load_app(write(tmp_path, wrong, "w.py")).follow_ups("r", "k", {}, 2)
