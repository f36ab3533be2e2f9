"""ExeScript: the JSON list of commands a requestor sends to an activity.

Parsed up front, like yagna does, so a malformed script is a 400 on ``exec`` rather than a
failed batch. Only the shape is checked here; whether a command is allowed in the activity's
current state is the exe-unit's business.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from golem_tasks.devnet.errors import BadRequest
from golem_tasks.devnet.jsontext import JsonError, parse_json

#: Commands that change the exe-unit's state and so cannot overlap.
STATEFUL = frozenset({"deploy", "start", "run", "transfer"})
KNOWN = STATEFUL | {"terminate", "sign"}
#: Most bytes of one stream of one command the exe-unit keeps (the rest is dropped).
MAX_CAPTURE = 4 << 20


@dataclass(frozen=True)
class Capture:
    """How one output stream is captured: streamed, or kept at the end (maybe trimmed)."""

    stream: bool = True
    head: int | None = None  # keep at most this many bytes from the start
    tail: int | None = None  # keep at most this many bytes from the end
    binary: bool = False


@dataclass(frozen=True)
class Command:
    name: str
    args: dict[str, Any] = field(default_factory=dict)
    #: The command exactly as sent, echoed in the ``started`` runtime event.
    raw: dict[str, Any] = field(default_factory=dict)


def parse_script(text: Any) -> list[Command]:
    if not isinstance(text, str):
        raise BadRequest("ExeScriptRequest.text must be a string with a JSON list of commands")
    try:
        items = parse_json(text)
    except JsonError as exc:
        raise BadRequest(f"Invalid ExeScript JSON: {exc}") from None
    if not isinstance(items, list):
        raise BadRequest("ExeScript must be a JSON list of commands")
    return [_parse_command(item, index) for index, item in enumerate(items)]


def _parse_command(item: Any, index: int) -> Command:
    if not isinstance(item, dict) or len(item) != 1:
        raise BadRequest(
            f"ExeScript command {index}: expected an object with exactly one command name, "
            f"got {json.dumps(item)[:200]}"
        )
    ((name, args),) = item.items()
    if name not in KNOWN:
        raise BadRequest(
            f"ExeScript command {index}: unknown variant `{name}`, expected one of "
            + ", ".join(f"`{known}`" for known in sorted(KNOWN))
        )
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise BadRequest(f"ExeScript command {index} ({name}): arguments must be an object")
    if name == "run":
        _check_run(args, index)
    elif name == "transfer":
        for key in ("from", "to"):
            if not isinstance(args.get(key), str) or not args[key]:
                raise BadRequest(f"ExeScript command {index} (transfer): missing field `{key}`")
            _no_nul(args[key], f"ExeScript command {index} (transfer): {key}")
    elif name == "deploy":
        env = args.get("env", {})
        if not isinstance(env, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in env.items()
        ):
            raise BadRequest(f"ExeScript command {index} (deploy): env must map strings to strings")
        for key, value in env.items():
            # What execve cannot take: the name ends at "=", and C strings at NUL.
            if not key or "=" in key:
                raise BadRequest(
                    f"ExeScript command {index} (deploy): invalid environment variable name {key!r}"
                )
            _no_nul(key, f"ExeScript command {index} (deploy): env name")
            _no_nul(value, f"ExeScript command {index} (deploy): env[{key!r}]")
    elif name == "start":
        start_args = args.get("args", [])
        if not isinstance(start_args, list) or not all(isinstance(a, str) for a in start_args):
            raise BadRequest(f"ExeScript command {index} (start): args must be a list of strings")
    return Command(name=name, args=args, raw=item)


def _check_run(args: dict[str, Any], index: int) -> None:
    entry = args.get("entry_point")
    if not isinstance(entry, str) or not entry:
        raise BadRequest(f"ExeScript command {index} (run): missing field `entry_point`")
    run_args = args.get("args", [])
    if not isinstance(run_args, list) or not all(isinstance(a, str) for a in run_args):
        raise BadRequest(f"ExeScript command {index} (run): args must be a list of strings")
    for text in (entry, *run_args):
        _no_nul(text, f"ExeScript command {index} (run): entry_point and args")
    capture = args.get("capture")
    if capture is not None:
        if not isinstance(capture, dict):
            raise BadRequest(f"ExeScript command {index} (run): capture must be an object")
        for stream in ("stdout", "stderr"):
            if stream in capture:
                parse_capture(capture[stream], f"ExeScript command {index} (run) capture.{stream}")


def parse_capture(mode: Any, where: str = "capture") -> Capture | None:
    """A capture mode: ``{"stream": {...}}`` or ``{"atEnd": {...}}``; None discards."""
    if mode is None:
        return None
    if not isinstance(mode, dict) or len(mode) != 1:
        raise BadRequest(f'{where}: expected {{"stream": {{}}}} or {{"atEnd": {{}}}}')
    ((kind, body),) = mode.items()
    body = body or {}
    if not isinstance(body, dict):
        raise BadRequest(f"{where}: {kind} must be an object")
    binary = body.get("format") in ("bin", "binary")
    if kind == "stream":
        limit = body.get("limit")
        return Capture(stream=True, head=_limit(limit, where), binary=binary)
    if kind == "atEnd":
        head, tail = body.get("head"), body.get("tail")
        both = body.get("headTail")
        part = body.get("part")
        if isinstance(part, dict):
            head, tail, both = part.get("head"), part.get("tail"), part.get("headTail")
        if both is not None:
            total = _limit(both, where) or 0
            head, tail = (total + 1) // 2, total - (total + 1) // 2
            return Capture(stream=False, head=head, tail=tail, binary=binary)
        return Capture(
            stream=False, head=_limit(head, where), tail=_limit(tail, where), binary=binary
        )
    raise BadRequest(f"{where}: unknown capture mode `{kind}`")


def _limit(value: Any, where: str) -> int | None:
    """A byte limit; beyond MAX_CAPTURE it makes no difference, so it is capped there."""
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise BadRequest(f"{where}: limits must be non-negative numbers")
    return int(min(value, MAX_CAPTURE))


def _no_nul(text: str, where: str) -> None:
    if "\0" in text:
        raise BadRequest(f"{where} may not contain a NUL character")


def run_captures(command: Command) -> tuple[Capture | None, Capture | None]:
    """stdout and stderr capture for a command; non-run commands capture everything."""
    if command.name != "run":
        return Capture(), Capture()
    capture = command.args.get("capture") or {}
    return parse_capture(capture.get("stdout")), parse_capture(capture.get("stderr"))
