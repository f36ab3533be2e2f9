"""Check HTTP responses against yagna's REST contract, kept in the repository.

The devnet must answer clients in the shapes the real daemon documents, or the suite would
pass against a fake that production never resembles. The contract is
``tests/contract/yagna-openapi.json``, generated from ya-client's OpenAPI files by
``make contract``; schemas are checked by openapi-schema-validator (OpenAPI 3.0 read
semantics: ``nullable``, ``writeOnly``, formats). A missing contract fails the test::

    from tests.support.openapi import validate_response

    validate_response("GET", "/market-api/v1/demands/d1/events?timeout=5", 200, events)

This module adds only the project's conventions where the contract is loose:

* ``default`` covers error statuses (4xx/5xx) only: answering ``200`` where yagna answers
  ``201`` is caught even for market operations, which all declare ``default``;
* a response documented without ``content`` must have no body (``None``, ``b""``, ``""``);
* ``bytes`` bodies are decoded as JSON; non-JSON media types are only checked to be bytes
  or text;
* a discriminator value outside its mapping is an error (the contract's ``enum`` says so),
  never a fall-back to whichever schema happens to have that name;
* failures name the operation, each failing value's JSON pointer and the schema location.
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jsonschema.exceptions import ValidationError, best_match, relevance
from jsonschema.validators import extend
from openapi_schema_validator import OAS30ReadValidator, oas30_format_checker
from openapi_schema_validator import _keywords as oas_keywords
from referencing import Registry
from referencing.jsonschema import DRAFT4

__all__ = [
    "CONTRACT_PATH",
    "Operation",
    "YagnaContract",
    "check_devnet_response",
    "default_contract",
    "known_operation",
    "load_contract",
    "operation_id",
    "validate_response",
]

CONTRACT_PATH = Path(__file__).resolve().parents[1] / "contract" / "yagna-openapi.json"
_URI = "urn:golem-tasks:yagna-contract"
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_MAX_REPORTED_ERRORS = 12
_EXCERPT = 160


def _one_of(validator: Any, one_of: Any, instance: Any, schema: Mapping[str, Any]) -> Iterator:
    """oneOf as openapi-schema-validator has it, minus the fall-back for unmapped values."""
    disc = schema.get("discriminator")
    if isinstance(disc, dict) and isinstance(instance, dict):
        value = instance.get(disc.get("propertyName"))
        if isinstance(value, str) and value not in (disc.get("mapping") or {}):
            return  # the enum beside it reports the unknown value
    yield from oas_keywords.oneOf(validator, one_of, instance, schema)


_Validator = extend(OAS30ReadValidator, {"oneOf": _one_of})


@dataclass(frozen=True)
class Response:
    """One documented response: its location and its schema pointer per media type."""

    location: str
    content: Mapping[str, str | None]  # media type (lower case) -> JSON pointer or None


@dataclass(frozen=True)
class Operation:
    """One documented operation, with its full path template as yagna mounts it."""

    method: str
    template: str
    operation_id: str | None
    responses: Mapping[str, Response]

    def describe(self) -> str:
        return f"{self.operation_id or '(no operationId)'} ({self.method} {self.template})"


def _escape(token: object) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def _pointer(path: Iterable[Any]) -> str:
    return "".join("/" + _escape(token) for token in path)


def _template_pattern(template: str) -> tuple[re.Pattern[str], tuple[int, int]]:
    pieces = re.split(r"(\{[^{}/]+\})", template)
    regex = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in pieces)
    literal_segments = sum(1 for s in template.split("/") if s and "{" not in s)
    literal_chars = sum(len(p) for p in pieces if not p.startswith("{"))
    return re.compile(regex), (literal_segments, literal_chars)


def _normalize_path(path: str) -> str:
    parts = urlsplit(path)
    p = parts.path if (parts.scheme or parts.netloc) else path.split("?", 1)[0].split("#", 1)[0]
    p = p if p.startswith("/") else "/" + p
    return p.rstrip("/") or "/"


def _is_json_media(media: str) -> bool:
    return media == "application/json" or media.endswith("+json")


def _excerpt(value: Any, limit: int = _EXCERPT) -> str:
    try:
        text = json.dumps(value, default=repr, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class YagnaContract:
    """The yagna REST contract: one OpenAPI 3.0 document with yagna's full paths."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        self.info = document.get("info") or {}
        self._registry = Registry().with_resource(_URI, DRAFT4.create_resource(document))
        self._validators: dict[str, Any] = {}
        templates = []
        for template, item in (document.get("paths") or {}).items():
            pattern, specificity = _template_pattern(template)
            where = f"#/paths/{_escape(template)}"
            operations = {
                method.upper(): self._operation(method, template, item[method], where)
                for method in _METHODS
                if isinstance(item.get(method), dict)
            }
            templates.append((specificity, template, pattern, operations))
        # Most specific first: /payments/status must win over /payments/{paymentId}.
        templates.sort(key=lambda t: t[0], reverse=True)
        self._templates = [t[1:] for t in templates]
        self._by_id = {op.operation_id: op for *_, ops in self._templates for op in ops.values()}

    @classmethod
    def from_file(cls, path: Path) -> YagnaContract:
        if not path.is_file():
            raise FileNotFoundError(
                f"the yagna contract {path} is missing: it is part of the repository "
                "(regenerate it with `make contract` from ya-client's specs)"
            )
        return cls(json.loads(path.read_text(encoding="utf-8")))

    # -- loading ---------------------------------------------------------------------

    def _resolve(self, pointer: str) -> Any:
        node: Any = self.document
        for token in pointer.lstrip("#").split("/")[1:]:
            node = node[token.replace("~1", "/").replace("~0", "~")]
        return node

    def _operation(self, method: str, template: str, op: Any, where: str) -> Operation:
        responses = {}
        for status, documented in (op.get("responses") or {}).items():
            location, response = f"{where}/{method}/responses/{status}", documented
            while "$ref" in response:
                location = response["$ref"]
                response = self._resolve(location)
            content = {
                media.lower(): (
                    f"{location}/content/{_escape(media)}/schema" if "schema" in spec else None
                )
                for media, spec in (response.get("content") or {}).items()
            }
            key = "default" if status.lower() == "default" else status.upper()
            responses[key] = Response(location, content)
        return Operation(method.upper(), template, op.get("operationId"), responses)

    # -- lookup ----------------------------------------------------------------------

    def _template_for(self, path: str) -> tuple[str, dict[str, Operation]] | None:
        normalized = _normalize_path(path)
        for template, pattern, operations in self._templates:
            if pattern.fullmatch(normalized):
                return template, operations
        return None

    def match(self, method: str, path: str) -> Operation | None:
        """The operation a client request ``method path`` invokes, or None."""
        found = self._template_for(path)
        return found[1].get(method.upper()) if found else None

    def known_operation(self, method: str, path: str) -> bool:
        return self.match(method, path) is not None

    def operation_id(self, method: str, path: str) -> str | None:
        op = self.match(method, path)
        return op.operation_id if op else None

    def operation(self, operation_id: str) -> Operation:
        return self._by_id[operation_id]

    def operations(self) -> list[Operation]:
        return [op for *_, ops in self._templates for op in ops.values()]

    def _require_operation(self, method: str, path: str) -> Operation:
        found = self._template_for(path)
        if found is None:
            normalized = _normalize_path(path)
            templates = [t for t, *_ in self._templates]
            close = difflib.get_close_matches(normalized, templates, n=3, cutoff=0.6)
            hint = f"; closest templates: {', '.join(close)}" if close else ""
            raise AssertionError(
                f"yagna contract: no operation matches {method.upper()} {normalized}: "
                f"the path fits no template of the contract{hint}"
            )
        template, operations = found
        op = operations.get(method.upper())
        if op is None:
            documented = ", ".join(sorted(operations)) or "none"
            raise AssertionError(
                f"yagna contract: {method.upper()} is not documented for {template}; "
                f"documented methods: {documented}"
            )
        return op

    # -- validation ------------------------------------------------------------------

    def response_for(self, op: Operation, status: int | str) -> tuple[str, Response]:
        """The documented response for ``status``; AssertionError if there is none."""
        code = str(status).strip().upper()
        if code in op.responses:
            return code, op.responses[code]
        if len(code) == 3 and code.isdigit():
            if code[0] + "XX" in op.responses:
                return code[0] + "XX", op.responses[code[0] + "XX"]
            if int(code) >= 400 and "default" in op.responses:
                return "default", op.responses["default"]
        documented = ", ".join(sorted(op.responses)) or "none"
        note = (
            " ('default' is only taken to cover error statuses, 4xx and 5xx)"
            if "default" in op.responses
            else ""
        )
        raise AssertionError(
            f"yagna contract: {op.describe()}: status {status} is not documented; "
            f"documented: {documented}{note}"
        )

    def validate_response(
        self,
        method: str,
        path: str,
        status: int | str,
        body: Any,
        content_type: str = "application/json",
    ) -> None:
        """Raise AssertionError unless this response is one the contract allows.

        ``path`` is the request path as the client sent it (query string and scheme/host
        allowed), ``body`` the decoded JSON (``None`` for an empty body) or its bytes.
        """
        op = self._require_operation(method, path)
        _, response = self.response_for(op, status)
        where = f"yagna contract: {op.describe()} -> {status}"
        if not response.content:
            if body is None or body in (b"", ""):
                return
            raise AssertionError(
                f"{where}: the contract documents no body for this response "
                f"({response.location}), but the response has one: {_excerpt(body)}"
            )
        media = (content_type or "").split(";", 1)[0].strip().lower()
        declared, schema = self._media_schema(where, response, media)
        if not _is_json_media(declared):
            if not isinstance(body, (bytes, bytearray, str)):
                raise AssertionError(
                    f"{where}: a {media} body must be bytes or text, not {type(body).__name__}"
                )
            return
        if isinstance(body, (bytes, bytearray)):
            try:
                body = json.loads(body)
            except ValueError as exc:
                raise AssertionError(f"{where}: the body is not valid JSON: {exc}") from None
        if schema is not None:
            errors = list(self.validator(schema).iter_errors(body))
            if errors:
                raise AssertionError(self._report(where, schema, body, errors))

    @staticmethod
    def _media_schema(where: str, response: Response, media: str) -> tuple[str, str | None]:
        if media in response.content:
            return media, response.content[media]
        for declared, schema in response.content.items():
            major, _, minor = declared.partition("/")
            if declared == "*/*" or (minor == "*" and media.startswith(major + "/")):
                return declared, schema
        raise AssertionError(
            f"{where}: content type {media or '(none)'!r} is not documented; "
            f"documented: {', '.join(response.content)}"
        )

    def validator(self, pointer: str) -> Any:
        """An openapi-schema-validator for the schema at ``pointer`` in the contract."""
        validator = self._validators.get(pointer)
        if validator is None:
            validator = _Validator(
                {"$ref": _URI + pointer},
                registry=self._registry,
                format_checker=oas30_format_checker,
            )
            self._validators[pointer] = validator
        return validator

    # -- reporting -------------------------------------------------------------------

    def _location(self, root: str, path: Iterable[Any]) -> str:
        """The contract location of a failing keyword, following ``$ref``s.

        jsonschema does not record ``$ref`` hops, nor which schema a discriminator chose:
        a token the current node lacks means a reference to follow first, and after a
        discriminated ``oneOf`` the mapped schema in which the rest of the path exists.
        """
        return self._walk(root, self._resolve(root), list(path))[0]

    def _walk(self, location: str, node: Any, tokens: list[Any]) -> tuple[str, bool]:
        disc: Any = None
        for i, token in enumerate(tokens):
            while isinstance(node, dict) and "$ref" in node and token not in node:
                location = node["$ref"]
                node = self._resolve(location)
            if token == "$ref" and isinstance(node, dict) and "$ref" in node:
                continue
            if isinstance(node, list) and not isinstance(token, int):
                mapping = (disc or {}).get("mapping") or {}
                for target in mapping.values():
                    found, complete = self._walk(target, self._resolve(target), tokens[i:])
                    if complete:
                        return found, True
                return location, False
            disc = node.get("discriminator") if isinstance(node, dict) else None
            try:
                node = node[token]
            except (KeyError, IndexError, TypeError):
                return location, False
            location += "/" + _escape(token)
        return location, True

    def _report(self, where: str, root: str, body: Any, errors: list[ValidationError]) -> str:
        lines = [f"{where}: the body does not match {root}:"]
        seen: set[str] = set()
        ordered = sorted(errors, key=lambda e: (list(map(str, e.absolute_path)), relevance(e)))
        for error in ordered:
            line = f"at {_pointer(error.absolute_path) or '(body root)'}: {error.message}"
            detail = f"schema {self._location(root, error.absolute_schema_path)}"
            if error.validator in ("oneOf", "anyOf") and error.context:
                closest = _closest(error)
                detail += (
                    f"; closest alternative fails at "
                    f"{_pointer(closest.absolute_path) or '(body root)'}: {closest.message}"
                )
            entry = f"  - {line}\n      ({detail})"
            if entry not in seen:
                seen.add(entry)
                if len(seen) <= _MAX_REPORTED_ERRORS:
                    lines.append(entry)
        if len(seen) > _MAX_REPORTED_ERRORS:
            lines.append(f"  ... and {len(seen) - _MAX_REPORTED_ERRORS} more")
        lines.append(f"  body: {_excerpt(body, 600)}")
        return "\n".join(lines)


def _closest(error: ValidationError) -> ValidationError:
    """The most relevant error of the oneOf/anyOf branch that came nearest to matching.

    A branch whose ``type`` does not even fit the value is the least interesting; of the
    others, the one with fewest errors wins.
    """
    branches: dict[Any, list[ValidationError]] = {}
    for sub in error.context or ():
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)

    def score(errors: Iterable[ValidationError]) -> tuple[int, int]:
        found = list(errors)
        depth = len(error.absolute_path)
        mistyped = any(e.validator == "type" and len(e.absolute_path) == depth for e in found)
        return (int(mistyped), len(found))

    return best_match(min(branches.values(), key=score))


@functools.lru_cache(maxsize=4)
def load_contract(path: Path = CONTRACT_PATH) -> YagnaContract:
    """The contract in ``path`` (loaded once); FileNotFoundError when it is missing."""
    return YagnaContract.from_file(path)


def default_contract() -> YagnaContract:
    return load_contract(CONTRACT_PATH)


def validate_response(
    method: str, path: str, status: int | str, body: Any, content_type: str = "application/json"
) -> None:
    """Raise AssertionError unless yagna's contract allows this response."""
    default_contract().validate_response(method, path, status, body, content_type)


def known_operation(method: str, path: str) -> bool:
    """Whether the contract documents ``method path`` (a full request path)."""
    return default_contract().known_operation(method, path)


def operation_id(method: str, path: str) -> str | None:
    """The ``operationId`` of ``method path``, or None when the contract lacks it."""
    return default_contract().operation_id(method, path)


def _usage_vector_as_object(path: str, body: Any) -> Any:
    def fix(note: Any) -> Any:
        if isinstance(note, dict) and isinstance(note.get("usageCounterVector"), list):
            note = dict(note)
            note["usageCounterVector"] = dict(enumerate(note["usageCounterVector"]))
        return note

    if "/debitNotes" in path:
        body = copy.deepcopy(body)
        return [fix(item) for item in body] if isinstance(body, list) else fix(body)
    return body


#: Paths (ends) where yagna answers an unknown id with 404 though the contract has none.
_YAGNA_404 = ("/demandDecorations", "/payments")


def check_devnet_response(
    method: str, path: str, status: int, body: Any, content_type: str = "application/json"
) -> None:
    """:func:`validate_response`, allowing only the devnet's documented deviations.

    * ``DebitNote.usageCounterVector`` is ``type: object`` in payment-api.yaml, but yagna
      sends (and golem-core needs, to zip it with the prices) a JSON array.
    * 400 (malformed input) and 401 (missing or wrong app key) on operations whose contract
      lists no such status (the whole activity API lacks 401; event queries lack 400):
      yagna answers them everywhere, and so must the devnet. Their body must still be
      ``{"message": str}``.
    * 404 for an id it does not know where yagna 0.17.6 answers 404 but the contract lists
      no 404: ``demandDecorations`` (allocation ids) and the payments of a debit note or
      an invoice (yagna: 404 for an invoice, 501 "not implemented" for a debit note).
    """
    try:
        validate_response(method, path, status, _usage_vector_as_object(path, body), content_type)
    except AssertionError as exc:
        undocumented = f"status {status} is not documented" in str(exc)
        is_message = isinstance(body, dict) and isinstance(body.get("message"), str)
        yagna_404 = status == 404 and _normalize_path(path).endswith(_YAGNA_404)
        if not (undocumented and (status in (400, 401) or yagna_404) and is_message):
            raise
