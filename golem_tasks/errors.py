"""Errors a user can act on: the CLI prints their message on one line and exits 2."""

from __future__ import annotations


class UserError(Exception):
    """Bad input or environment that the user must fix; never a bug in golem-tasks."""

    exit_code = 2


def storable(text: str) -> str:
    """``text`` as PostgreSQL can store it: text columns refuse NUL, so it is spelled out."""
    return text.replace("\x00", "\\x00")


def describe(exc: BaseException) -> str:
    """``Type: message`` on one line, for stored reasons and one-line errors."""
    text = storable(" ".join(str(exc).split()))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
