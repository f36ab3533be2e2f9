"""Run ids: made up when not given, and refused up front when they could not work.

A run id names the run's rows, its advisory lock, its yagna app session and, for
``golem-tasks run``, its procrastinate queue; it is also typed on command lines and shown
in logs. An empty id, a control character or a runaway length would break one of those
later, after agreements were made, so they are refused before anything is written.
"""

from __future__ import annotations

import unicodedata
import uuid

from golem_tasks.errors import UserError

#: Long enough for any descriptive name; short enough for one log line.
MAX_RUN_ID_CHARS = 100


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def check_run_id(run_id: str) -> str:
    """``run_id`` itself, or a :class:`UserError` that says what is wrong with it."""
    if not run_id.strip():
        raise UserError("the run id is empty: give a name, or leave --run-id out for a new one")
    if len(run_id) > MAX_RUN_ID_CHARS:
        raise UserError(
            f"the run id is {len(run_id)} characters long; at most {MAX_RUN_ID_CHARS} are allowed"
        )
    for position, char in enumerate(run_id):
        if unicodedata.category(char)[0] == "C" or unicodedata.category(char) in ("Zl", "Zp"):
            raise UserError(
                f"the run id has a control character ({char!a}) at position {position + 1}"
            )
    return run_id
