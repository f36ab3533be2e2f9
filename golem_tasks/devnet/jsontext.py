"""Parsing JSON a client sent, without letting its shape hurt the devnet.

Python's ``json`` parses ``[[[[...`` by recursion, and so does anything that walks the
result later (flattening properties, echoing a command): a body nested a few thousand
levels deep would end in a RecursionError deep inside a handler. Values are therefore
refused when they nest deeper than any yagna document does.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

#: Deepest nesting accepted (yagna's documents nest a handful of levels).
MAX_DEPTH = 64


class JsonError(ValueError):
    """Text that is not acceptable JSON; the message says why."""


def parse_json(raw: str | bytes) -> Any:
    """Decode ``raw``; raise JsonError when it is not JSON or nests deeper than MAX_DEPTH."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise JsonError(f"nested deeper than {MAX_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise JsonError(str(exc)) from None
    if depth(value) > MAX_DEPTH:
        raise JsonError(f"nested deeper than {MAX_DEPTH} levels")
    return value


def depth(value: Any) -> int:
    """How deeply lists and objects nest in ``value`` (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        children: Iterable[Any]
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        level += 1
        if level > deepest:
            deepest = level
            if deepest > MAX_DEPTH:
                return deepest
        stack.extend((child, level) for child in children)
    return deepest
