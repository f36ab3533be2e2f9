"""Helpers for tests that drive golem-tasks as real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for a CLI subprocess: no DSN or libpq settings leak in from outside."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PG") and key != "GOLEM_TASKS_DSN"
    }
    env.update(extra)
    return env


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``golem-tasks ARGS`` as a real process."""
    return subprocess.run(
        [sys.executable, "-m", "golem_tasks", *args],
        capture_output=True,
        text=True,
        env=env if env is not None else cli_env(),
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )
