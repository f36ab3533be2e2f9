"""Named SQL queries, read from the ``.sql`` files in ``db/sql/``.

Each query starts with a ``-- name: <name>`` line; comment lines right after it document
it. Parameters use psycopg's ``%(name)s`` style. Every name is unique across the files.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

_NAME = re.compile(r"^--\s*name:\s*(?P<name>[a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def parse(text: str, source: str = "<sql>") -> dict[str, str]:
    """Split a file into ``{name: sql}``; text before the first name is a file comment."""
    found: dict[str, str] = {}
    matches = list(_NAME.finditer(text))
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        body = "\n".join(
            line
            for line in text[match.end() : end].strip().splitlines()
            if not line.lstrip().startswith("--")
        ).strip()
        name = match["name"]
        if name in found:
            raise ValueError(f"query {name!r} defined twice in {source}")
        found[name] = body.rstrip(";").strip()
    return found


class Queries:
    """Attribute access to every named query, loaded once."""

    def __init__(self) -> None:
        self._queries: dict[str, str] = {}
        for entry in sorted(resources.files("golem_tasks.db").joinpath("sql").iterdir(), key=str):
            if not entry.name.endswith(".sql"):
                continue
            for name, body in parse(entry.read_text("utf-8"), entry.name).items():
                if name in self._queries:
                    raise ValueError(f"query {name!r} defined twice (again in {entry.name})")
                self._queries[name] = body

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_queries"][name]
        except KeyError:
            raise AttributeError(f"no SQL query named {name!r}") from None

    def names(self) -> list[str]:
        return sorted(self._queries)


queries = Queries()
