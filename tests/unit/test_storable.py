"""Values PostgreSQL would refuse are caught before they reach it, saying where."""

from __future__ import annotations

import pytest

from golem_tasks.errors import describe, storable
from golem_tasks.store.tasks import check_json


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("out\x00", "a NUL character (\\u0000) in it"),
        ({"stdout": ["ok", "b\x00"]}, "a NUL character (\\u0000) in ['stdout'][1]"),
        ({"k\x00": 1}, "in the key 'k\\x00' of it"),
        (["\ud800"], "a lone UTF-16 surrogate in [0]"),
        (float("nan"), "not JSON-serialisable"),
        ({1, 2}, "not JSON-serialisable"),
    ],
)
def test_values_jsonb_refuses(value: object, fragment: str) -> None:
    with pytest.raises(ValueError) as caught:
        check_json(value, "the result")
    assert fragment in str(caught.value)


@pytest.mark.parametrize("value", ["\\u0000 as text", {"a": [1, "é", None]}, "ok\u2028"])
def test_values_jsonb_stores(value: object) -> None:
    assert check_json(value, "the result") is value


def test_error_texts_spell_nul_out() -> None:
    assert storable("a\x00b") == "a\\x00b"
    assert describe(RuntimeError("said\x00 no")) == "RuntimeError: said\\x00 no"
