"""Run ids that could not work are refused before anything is written."""

from __future__ import annotations

import pytest

from golem_tasks import queue
from golem_tasks.errors import UserError
from golem_tasks.runid import MAX_RUN_ID_CHARS, check_run_id, new_run_id


@pytest.mark.parametrize(
    ("run_id", "fragment"),
    [
        ("", "the run id is empty"),
        ("   ", "the run id is empty"),
        ("a\x00b", "control character ('\\x00') at position 2"),
        ("esc\x1b[2J", "control character ('\\x1b')"),
        ("line\nbreak", "control character ('\\n')"),
        ("tab\there", "control character ('\\t')"),
        ("para\u2029graph", "control character ('\\u2029')"),
        ("x" * 101, "101 characters long; at most 100"),
    ],
)
def test_bad_run_ids(run_id: str, fragment: str) -> None:
    with pytest.raises(UserError) as caught:
        check_run_id(run_id)
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("run_id", ["r1", "nightly render 2026-11-28", "é" * 100, new_run_id()])
def test_good_run_ids(run_id: str) -> None:
    assert check_run_id(run_id) == run_id


def test_local_queue_names_fit_procrastinate() -> None:
    assert queue.local_queue("abc") == "golem-tasks-local-abc"  # unchanged for short ids
    longest = [f"{'é' * (MAX_RUN_ID_CHARS - 1)}{n}" for n in range(3)]
    names = {queue.local_queue(run_id) for run_id in longest}
    assert len(names) == 3
    assert all(len(name.encode()) <= queue.MAX_QUEUE_NAME_BYTES for name in names)
    assert queue.MAX_QUEUE_NAME_BYTES == 40  # 63-byte channel names, minus procrastinate's prefix
