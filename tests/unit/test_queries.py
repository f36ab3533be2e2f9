from __future__ import annotations

import pytest

from golem_tasks.db.queries import parse, queries


def test_parse_named_queries_strips_comments() -> None:
    text = "-- file comment\n-- name: one\n-- doc\nSELECT 1;\n\n-- name: two\nSELECT 2\n"
    assert parse(text) == {"one": "SELECT 1", "two": "SELECT 2"}


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        parse("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;")


def test_bundled_queries_load() -> None:
    assert "schema_version" in queries.names()
    with pytest.raises(AttributeError):
        _ = queries.no_such_query
