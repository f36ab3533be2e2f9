"""The devnet's environment as shell ``export`` lines, and reading them back.

``golem-tasks devnet`` prints these lines and then ``READY``; a shell evals them, and
:class:`~golem_tasks.devnet.detached.DevnetProcess` reads them from the child's stdout.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping

#: The line that follows the exports once the devnet serves.
READY = "# golem-tasks devnet ready"
#: Where ``golem-tasks devnet`` takes its app key from when ``--app-key`` is not given
#: (an environment variable, unlike an argument, is not shown to other local users).
APPKEY_ENV = "GOLEM_TASKS_DEVNET_APPKEY"


def export_lines(env: Mapping[str, str]) -> str:
    return "".join(f"export {key}={shlex.quote(value)}\n" for key, value in env.items())


def parse_export(line: str) -> tuple[str, str] | None:
    """``(name, value)`` of an ``export NAME=value`` line; None for any other line."""
    if not line.startswith("export "):
        return None
    key, _, value = line[len("export ") :].strip().partition("=")
    return key, (shlex.split(value)[0] if value else "")
