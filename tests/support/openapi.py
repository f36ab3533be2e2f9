"""Check HTTP responses against yagna's REST contract: the OpenAPI files of ya-client.

The devnet must answer golem-core in exactly the shapes the real yagna daemon uses, or the
suite would pass against a fake that production never resembles. This module loads the
ya-client specs (``market-api.yaml``, ``activity-api.yaml``, ``payment-api.yaml``, ...),
resolves their ``$ref``s across files, converts OpenAPI 3.0 schemas into JSON Schema
(draft 2020-12) for :mod:`jsonschema`, and validates recorded responses against them::

    from tests.support.openapi import validate_response

    validate_response("GET", "/market-api/v1/demands/d1/events?timeout=5", 200, events)

A violation raises :class:`AssertionError` naming the operation, the spec location, the JSON
pointer of every failing value and why it fails. The specs are found through the
``YA_CLIENT_SPECS`` environment variable, else in ``shared/ya-client-specs`` in the repository
root or any directory above it; when they are nowhere, the module-level functions skip the
calling test (``pytest.skip``) rather than fail, and importing this module never needs them.

Conventions (decisions where the contract itself is loose):

* A ``default`` response only covers error statuses (4xx/5xx): a success status must be
  listed explicitly, so answering ``200`` where yagna answers ``201`` is caught even for
  market operations, which all declare ``default``.
* A response without ``content`` must have no body (``None``, ``b""`` or ``""``).
* ``body`` is the decoded JSON value; ``bytes`` are decoded as JSON first. Non-JSON media
  types (``application/octet-stream``) are only checked to be bytes or text.
* A schema with a ``discriminator`` and no ``mapping`` dispatches on the schema name, as the
  OpenAPI specification prescribes: an ``Event`` whose ``eventType`` is ``ProposalEvent`` is
  validated as ``ProposalEvent``, and an ``eventType`` naming no schema derived from
  ``Event`` is an error.
* ``nullable: true`` admits ``null`` (also when an ``enum`` does not list it); ``writeOnly``
  properties are never required in responses; ``format`` is checked for ``date-time``
  (RFC 3339, offset required), ``date``, ``int32`` and ``int64``.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import functools
import json
import os
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import yaml
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError, relevance

__all__ = [
    "SPECS_ENV",
    "Operation",
    "YagnaContract",
    "default_contract",
    "find_specs_dir",
    "known_operation",
    "load_contract",
    "locate_specs",
    "operation_id",
    "validate_response",
]

SPECS_ENV = "YA_CLIENT_SPECS"
#: Where the specs live relative to the repository root or one of its parents.
SPECS_SUBDIR = Path("shared") / "ya-client-specs"
#: A file every copy of the specs has; a directory without it is not a specs folder.
MARKER_FILE = "market-api.yaml"
REPO_ROOT = Path(__file__).resolve().parents[2]

_HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_MAX_REPORTED_ERRORS = 12
_EXCERPT = 160


# --------------------------------------------------------------------------------------
# Locating and loading the specs


def locate_specs(start: Path | None = None) -> tuple[Path | None, str]:
    """Find the specs folder; returns ``(path, how)`` or ``(None, why not)``.

    ``YA_CLIENT_SPECS`` wins when set (and is not second-guessed: a wrong value is reported,
    not silently replaced by another copy). Otherwise ``shared/ya-client-specs`` is looked
    for in ``start`` (default: the repository root) and every parent directory, which is
    where CI puts the shared folder next to its fresh clone.
    """
    env = os.environ.get(SPECS_ENV)
    if env:
        path = Path(env).expanduser()
        if (path / MARKER_FILE).is_file():
            return path.resolve(), f"{SPECS_ENV}={env}"
        return None, f"{SPECS_ENV}={env} is set but has no {MARKER_FILE}"
    origin = (start or REPO_ROOT).resolve()
    for directory in (origin, *origin.parents):
        candidate = directory / SPECS_SUBDIR
        if (candidate / MARKER_FILE).is_file():
            return candidate, f"found {candidate}"
    return None, (
        f"yagna OpenAPI specs not found: set {SPECS_ENV} to a copy of ya-client's specs/ "
        f"folder, or place one at {SPECS_SUBDIR} in {origin} or a parent directory"
    )


def find_specs_dir(start: Path | None = None) -> Path | None:
    """The specs folder, or None when there is none (see :func:`locate_specs`)."""
    return locate_specs(start)[0]


_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _SpecLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """YAML without YAML-1.1 surprises: timestamps stay strings, only true/false are bools."""


_BOOL_TAG = "tag:yaml.org,2002:bool"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL_TAG, _TIMESTAMP_TAG)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_SpecLoader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return yaml.load(fh, Loader=_SpecLoader)


# --------------------------------------------------------------------------------------
# Formats


_RFC3339 = re.compile(r"(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})\Z")
FORMAT_CHECKER = FormatChecker(formats=())


@FORMAT_CHECKER.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    """RFC 3339 date-time (what yagna's chrono emits and golem-core's dateutil parses)."""
    if not isinstance(value, str):
        return True
    m = _RFC3339.match(value)
    if not m:
        raise ValueError("not an RFC 3339 date-time with a time zone offset")
    date, time, fraction, offset = m.groups()
    fraction = (fraction or "")[:7]  # fromisoformat takes at most microseconds
    offset = "+00:00" if offset in "Zz" else offset
    _dt.datetime.fromisoformat(f"{date}T{time}{fraction}{offset}")
    return True


@FORMAT_CHECKER.checks("date", raises=ValueError)
def _is_date(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("not an RFC 3339 full-date")
    _dt.date.fromisoformat(value)
    return True


def _int_range_checker(bits: int) -> Any:
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def check(value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, int):
            return True
        return low <= value <= high

    return check


FORMAT_CHECKER.checks("int32")(_int_range_checker(32))
FORMAT_CHECKER.checks("int64")(_int_range_checker(64))


# --------------------------------------------------------------------------------------
# OpenAPI 3.0 schema -> JSON Schema


_KEPT_KEYWORDS = frozenset(
    {
        "type",
        "enum",
        "const",
        "required",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "pattern",
        "minItems",
        "maxItems",
        "uniqueItems",
        "minProperties",
        "maxProperties",
        "multipleOf",
        "format",
    }
)


def _pointer_escape(token: object) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def _pointer_tokens(pointer: str) -> list[str]:
    if not pointer or pointer == "/":
        return [] if not pointer else [""]
    if not pointer.startswith("/"):
        raise ValueError(f"not a JSON pointer: {pointer!r}")
    return [unquote(t).replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


class _SchemaCompiler:
    """Converts schemas reachable from the specs into one ``$defs`` table, lazily per ref."""

    def __init__(self, docs: Mapping[str, Any]) -> None:
        self.docs = docs
        self.defs: dict[str, Any] = {}
        self.labels: dict[str, str] = {}
        self._keys: dict[tuple[str, str, str], str] = {}
        self._pending: list[tuple[str, str, str]] = []
        self._children: dict[str, dict[tuple[str, str], list[str]]] = {}

    # -- references ------------------------------------------------------------------

    def resolve_ref(self, doc: str, ref: str) -> tuple[str, str]:
        """``$ref`` text seen in ``doc`` -> (document name, JSON pointer)."""
        file_part, _, pointer = ref.partition("#")
        if file_part:
            target = posixpath.normpath(posixpath.join(posixpath.dirname(doc), file_part))
            if target not in self.docs:
                raise LookupError(f"{doc}: $ref {ref!r} points to a file that is not loaded")
        else:
            target = doc
        self.resolve(target, pointer)  # fail early on dangling refs
        return target, pointer

    def resolve(self, doc: str, pointer: str) -> Any:
        node = self.docs[doc]
        for token in _pointer_tokens(pointer):
            if isinstance(node, list):
                node = node[int(token)]
            elif isinstance(node, dict):
                if token in node:
                    node = node[token]
                elif token.isdigit() and int(token) in node:
                    node = node[int(token)]
                else:
                    raise LookupError(f"{doc}#{pointer}: no {token!r} in the document")
            else:
                raise LookupError(f"{doc}#{pointer}: cannot descend into {type(node).__name__}")
        return node

    def ref(self, doc: str, pointer: str, *, base: bool = False) -> dict[str, str]:
        """A JSON Schema ``$ref`` to the converted schema at ``doc#pointer``.

        ``base`` selects the plain form of a schema that has a discriminator: the form an
        ``allOf`` of a derived schema includes, which must not dispatch again.
        """
        variant = "base" if base and self.discriminator(self.resolve(doc, pointer)) else "main"
        return {"$ref": "#/$defs/" + self._key(doc, pointer, variant)}

    def _key(self, doc: str, pointer: str, variant: str) -> str:
        ident = (doc, pointer, variant)
        key = self._keys.get(ident)
        if key is None:
            label = f"{doc}#{pointer}" + (" (base)" if variant == "base" else "")
            key = self._new_key(label)
            self._keys[ident] = key
            self._pending.append(ident)
        return key

    def _new_key(self, label: str) -> str:
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_") or "schema"
        key, n = stem, 1
        while key in self.labels:
            n += 1
            key = f"{stem}_{n}"
        self.labels[key] = label
        return key

    def inline(self, doc: str, schema: Any, label: str) -> str:
        """Register a schema written inline (e.g. in a response) and return its key."""
        if isinstance(schema, dict) and set(schema) == {"$ref"}:
            target_doc, pointer = self.resolve_ref(doc, schema["$ref"])
            return self.ref(target_doc, pointer)["$ref"].rsplit("/", 1)[1]
        key = self._new_key(label)
        self.defs[key] = self.convert(schema, doc)
        return key

    def drain(self) -> None:
        """Convert every schema referenced so far (and what those reference in turn)."""
        while self._pending:
            doc, pointer, variant = self._pending.pop()
            key = self._keys[(doc, pointer, variant)]
            self.defs[key] = self._build(doc, pointer, variant)

    # -- discriminators --------------------------------------------------------------

    @staticmethod
    def discriminator(raw: Any) -> dict[str, Any] | None:
        if not isinstance(raw, dict):
            return None
        if isinstance(raw.get("discriminator"), dict):
            return raw["discriminator"]
        for item in raw.get("allOf") or ():
            if (
                isinstance(item, dict)
                and "$ref" not in item
                and isinstance(item.get("discriminator"), dict)
            ):
                return item["discriminator"]
        return None

    def _derived(self, doc: str, pointer: str) -> list[str]:
        """Names of the schemas in ``doc`` that include ``doc#pointer`` through ``allOf``."""
        graph = self._children.get(doc)
        if graph is None:
            graph = {}
            schemas = ((self.docs[doc].get("components") or {}).get("schemas")) or {}
            for name, raw in schemas.items():
                items = raw.get("allOf") if isinstance(raw, dict) else None
                for item in items or ():
                    if isinstance(item, dict) and "$ref" in item:
                        parent = self.resolve_ref(doc, item["$ref"])
                        graph.setdefault(parent, []).append(name)
            self._children[doc] = graph
        out: list[str] = []
        stack = [(doc, pointer)]
        while stack:
            for name in graph.get(stack.pop(), ()):
                if name not in out:
                    out.append(name)
                    stack.append((doc, f"/components/schemas/{_pointer_escape(name)}"))
        return out

    def _build(self, doc: str, pointer: str, variant: str) -> Any:
        raw = self.resolve(doc, pointer)
        disc = self.discriminator(raw)
        if variant == "main" and disc is not None and disc.get("propertyName"):
            targets: dict[str, tuple[str, str]] = {
                name: (doc, f"/components/schemas/{_pointer_escape(name)}")
                for name in self._derived(doc, pointer)
            }
            for value, target in (disc.get("mapping") or {}).items():
                if "#" in target or target.endswith((".yaml", ".yml", ".json")):
                    targets[str(value)] = self.resolve_ref(doc, target)
                else:
                    targets[str(value)] = (doc, f"/components/schemas/{_pointer_escape(target)}")
            if targets:
                return self._dispatch(doc, pointer, disc["propertyName"], targets)
        return self.convert(raw, doc)

    def _dispatch(
        self, doc: str, pointer: str, prop: str, targets: Mapping[str, tuple[str, str]]
    ) -> dict[str, Any]:
        """Validate against the schema the discriminator value names; reject unknown values."""
        names = sorted(targets)
        return {
            "if": {"type": "object", "required": [prop], "properties": {prop: {"enum": names}}},
            "then": {
                "allOf": [
                    {
                        "if": {"properties": {prop: {"const": value}}},
                        "then": self.ref(*targets[value], base=True),
                    }
                    for value in names
                ]
            },
            "else": {
                "allOf": [
                    self.ref(doc, pointer, base=True),
                    {"properties": {prop: {"enum": names}}},
                ]
            },
        }

    # -- schema objects --------------------------------------------------------------

    def convert(self, node: Any, doc: str, *, allof_item: bool = False) -> Any:
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            # OpenAPI 3.0 ignores siblings of $ref; `nullable` is honoured as intended.
            out: dict[str, Any] = self.ref(*self.resolve_ref(doc, node["$ref"]), base=allof_item)
            if node.get("nullable") is True:
                return {"anyOf": [out, {"type": "null"}]}
            return out
        out = {}
        for key, value in node.items():
            if key in ("properties", "patternProperties") and isinstance(value, dict):
                out[key] = {name: self.convert(sub, doc) for name, sub in value.items()}
            elif key == "additionalProperties":
                out[key] = value if isinstance(value, bool) else self.convert(value, doc)
            elif key in ("items", "not"):
                out[key] = self.convert(value, doc)
            elif key == "allOf":
                out[key] = [self.convert(sub, doc, allof_item=True) for sub in value]
            elif key in ("oneOf", "anyOf"):
                out[key] = [self.convert(sub, doc) for sub in value]
            elif key in _KEPT_KEYWORDS:
                out[key] = value
        for bound in ("Minimum", "Maximum"):
            # OpenAPI 3.0 (draft 4) booleans -> JSON Schema numbers.
            if node.get(f"exclusive{bound}") is True and bound.lower() in out:
                out[f"exclusive{bound}"] = out.pop(bound.lower())
            elif isinstance(node.get(f"exclusive{bound}"), (int, float)):
                out[f"exclusive{bound}"] = node[f"exclusive{bound}"]
        if "type" in out or any(k in node for k in ("allOf", "oneOf", "anyOf", "not", "enum")):
            pass
        elif "properties" in node or "additionalProperties" in node:
            # Code generators (ya-client's included) read such a schema as an object; as JSON
            # Schema it would also accept strings, and `oneOf: [PaymentPlatform, string]`
            # would then reject every string.
            out["type"] = "object"
        props = node.get("properties") if isinstance(node.get("properties"), dict) else {}
        if "required" in out:
            required = [
                r
                for r in out["required"]
                if not (isinstance(props.get(r), dict) and props[r].get("writeOnly") is True)
            ]
            if required:
                out["required"] = required
            else:
                del out["required"]
        if node.get("nullable") is True:
            if "type" in out:
                types = [out["type"]] if isinstance(out["type"], str) else list(out["type"])
                out["type"] = [*types, "null"]
                if "enum" in out and None not in out["enum"]:
                    out["enum"] = [*out["enum"], None]
            else:
                out = {"anyOf": [out, {"type": "null"}]}
        return out


# --------------------------------------------------------------------------------------
# Operations


@dataclass(frozen=True)
class Response:
    """One documented response: where it is defined and its schema per media type."""

    label: str
    content: Mapping[str, str | None]  # media type (lower case) -> $defs key or None


@dataclass(frozen=True)
class Operation:
    """One documented operation, with its path template as mounted in yagna."""

    spec: str
    method: str
    template: str  # full path template, e.g. /market-api/v1/demands/{subscriptionId}
    operation_id: str | None
    responses: Mapping[str, Response]

    def describe(self) -> str:
        name = self.operation_id or "(no operationId)"
        return f"{name} ({self.method} {self.template}, {self.spec})"


@dataclass(frozen=True)
class _Template:
    template: str
    spec: str
    pattern: re.Pattern[str]
    specificity: tuple[int, int]  # literal segments, literal characters
    operations: Mapping[str, Operation]


def _template_pattern(template: str) -> tuple[re.Pattern[str], tuple[int, int]]:
    pieces = re.split(r"(\{[^{}/]+\})", template)
    regex = "".join(
        "[^/]+" if piece.startswith("{") and piece.endswith("}") else re.escape(piece)
        for piece in pieces
    )
    segments = [s for s in template.split("/") if s]
    literal_segments = sum(1 for s in segments if "{" not in s)
    literal_chars = sum(len(p) for p in pieces if not p.startswith("{"))
    return re.compile(regex), (literal_segments, literal_chars)


def _normalize_path(path: str) -> str:
    parts = urlsplit(path)
    p = parts.path if (parts.scheme or parts.netloc) else path.split("?", 1)[0].split("#", 1)[0]
    if not p.startswith("/"):
        p = "/" + p
    if len(p) > 1:
        p = p.rstrip("/") or "/"
    return p


def _is_json_media(media: str) -> bool:
    return media == "application/json" or media.endswith("+json")


def _excerpt(value: Any, limit: int = _EXCERPT) -> str:
    try:
        text = json.dumps(value, default=repr, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _json_pointer(path: Iterable[Any]) -> str:
    return "".join("/" + _pointer_escape(token) for token in path)


class YagnaContract:
    """The yagna REST contract loaded from one specs folder."""

    def __init__(self, specs_dir: Path, mounts: Mapping[str, str] | None = None) -> None:
        """Load every ``*.yaml`` in ``specs_dir``.

        Each API is mounted at its ``servers[0].url`` (``/market-api/v1`` and so on); files
        without ``servers`` (identity's ``/me``, ``/version/get``) are served from the root,
        as yagna does. ``mounts`` overrides the mount point per file name.
        """
        self.specs_dir = Path(specs_dir)
        docs = {p.name: _load_yaml(p) for p in sorted(self.specs_dir.glob("*.yaml"))}
        if MARKER_FILE not in docs:
            raise FileNotFoundError(f"{self.specs_dir} has no {MARKER_FILE}")
        self.docs: dict[str, Any] = docs
        self._compiler = _SchemaCompiler(docs)
        self.mounts: dict[str, str] = {}
        templates: list[_Template] = []
        for name, doc in docs.items():
            if not isinstance(doc, dict) or not doc.get("paths"):
                continue
            mount = (mounts or {}).get(name, self._mount_point(doc))
            self.mounts[name] = mount
            for spec_template, item in doc["paths"].items():
                templates.append(self._load_path(name, mount, spec_template, item))
        self._compiler.drain()
        # Most specific first: /payments/status must win over /payments/{paymentId}.
        templates.sort(key=lambda t: t.specificity, reverse=True)
        self._templates = templates
        self._root_schema_defs = self._compiler.defs
        self._validators: dict[str, Draft202012Validator] = {}
        self._by_operation_id = {
            op.operation_id: op
            for t in templates
            for op in t.operations.values()
            if op.operation_id
        }

    # -- loading ---------------------------------------------------------------------

    @staticmethod
    def _mount_point(doc: Mapping[str, Any]) -> str:
        servers = doc.get("servers") or []
        if not servers or not isinstance(servers[0], dict) or not servers[0].get("url"):
            return ""
        return urlsplit(str(servers[0]["url"])).path.rstrip("/")

    def _load_path(self, name: str, mount: str, spec_template: str, item: Any) -> _Template:
        compiler = self._compiler
        if isinstance(item, dict) and "$ref" in item:
            item = compiler.resolve(*compiler.resolve_ref(name, item["$ref"]))
        full = mount + spec_template
        operations: dict[str, Operation] = {}
        for method in _HTTP_METHODS:
            op = item.get(method) if isinstance(item, dict) else None
            if not isinstance(op, dict):
                continue
            where = f"{name}#/paths/{_pointer_escape(spec_template)}/{method}"
            responses = {
                self._status_key(status): self._load_response(
                    name, resp, f"{where}/responses/{status}"
                )
                for status, resp in (op.get("responses") or {}).items()
            }
            operations[method.upper()] = Operation(
                spec=name,
                method=method.upper(),
                template=full,
                operation_id=op.get("operationId"),
                responses=responses,
            )
        pattern, specificity = _template_pattern(full)
        return _Template(full, name, pattern, specificity, operations)

    @staticmethod
    def _status_key(status: object) -> str:
        text = str(status).strip()
        return "default" if text.lower() == "default" else text.upper()

    def _load_response(self, doc: str, node: Any, label: str) -> Response:
        compiler = self._compiler
        seen: set[tuple[str, str]] = set()
        while isinstance(node, dict) and "$ref" in node:
            doc, pointer = compiler.resolve_ref(doc, node["$ref"])
            if (doc, pointer) in seen:
                raise ValueError(f"{label}: circular response $ref")
            seen.add((doc, pointer))
            label = f"{doc}#{pointer}"
            node = compiler.resolve(doc, pointer)
        content: dict[str, str | None] = {}
        for media, media_obj in ((node or {}).get("content") or {}).items():
            schema = (media_obj or {}).get("schema")
            media_label = f"{label}/content/{_pointer_escape(media)}/schema"
            content[str(media).lower()] = (
                None if schema is None else compiler.inline(doc, schema, media_label)
            )
        return Response(label, content)

    # -- lookup ----------------------------------------------------------------------

    def _template_for(self, path: str) -> _Template | None:
        normalized = _normalize_path(path)
        for template in self._templates:
            if template.pattern.fullmatch(normalized):
                return template
        return None

    def match(self, method: str, path: str) -> Operation | None:
        """The operation a client request ``method path`` invokes, or None."""
        template = self._template_for(path)
        if template is None:
            return None
        return template.operations.get(method.upper())

    def known_operation(self, method: str, path: str) -> bool:
        return self.match(method, path) is not None

    def operation_id(self, method: str, path: str) -> str | None:
        op = self.match(method, path)
        return op.operation_id if op else None

    def operation(self, operation_id: str) -> Operation:
        """The operation with this ``operationId`` (for tests that reason about the spec)."""
        return self._by_operation_id[operation_id]

    def _require_operation(self, method: str, path: str) -> Operation:
        normalized = _normalize_path(path)
        template = self._template_for(path)
        if template is None:
            templates = [t.template for t in self._templates]
            close = difflib.get_close_matches(normalized, templates, n=3, cutoff=0.6)
            hint = f"; closest templates: {', '.join(close)}" if close else ""
            mounts = ", ".join(f"{m or '/'} ({n})" for n, m in sorted(self.mounts.items()))
            raise AssertionError(
                f"yagna contract: no operation matches {method.upper()} {normalized}: the path "
                f"fits no template in the specs{hint}. APIs are mounted at: {mounts}"
            )
        op = template.operations.get(method.upper())
        if op is None:
            documented = ", ".join(sorted(template.operations)) or "none"
            raise AssertionError(
                f"yagna contract: {method.upper()} is not documented for {template.template} "
                f"({template.spec}); documented methods: {documented}"
            )
        return op

    # -- validation ------------------------------------------------------------------

    def response_for(self, op: Operation, status: int | str) -> tuple[str, Response]:
        """The documented response for ``status``; AssertionError if there is none."""
        code = self._status_key(status)
        if code in op.responses:
            return code, op.responses[code]
        if len(code) == 3 and code.isdigit():
            ranged = code[0] + "XX"
            if ranged in op.responses:
                return ranged, op.responses[ranged]
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
        """Raise AssertionError unless this response is one the contract allows."""
        op = self._require_operation(method, path)
        _, response = self.response_for(op, status)
        where = f"yagna contract: {op.describe()} -> {status}"
        if not response.content:
            if body is None or body in (b"", ""):
                return
            raise AssertionError(
                f"{where}: the spec documents no body for this response ({response.label}), "
                f"but the response has one: {_excerpt(body)}"
            )
        media = (content_type or "").split(";", 1)[0].strip().lower()
        declared, schema_key = self._media_schema(where, response, media)
        if not (_is_json_media(declared) or (declared.endswith("*") and _is_json_media(media))):
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
        if schema_key is None:
            return
        errors = list(self._validator(schema_key).iter_errors(body))
        if errors:
            raise AssertionError(self._report(where, schema_key, body, errors))

    def _media_schema(self, where: str, response: Response, media: str) -> tuple[str, str | None]:
        """The declared media type covering ``media`` and its schema key."""
        if media in response.content:
            return media, response.content[media]
        for declared, key in response.content.items():
            major, _, minor = declared.partition("/")
            if declared == "*/*" or (minor == "*" and media.startswith(major + "/")):
                return declared, key
        raise AssertionError(
            f"{where}: content type {media or '(none)'!r} is not documented; "
            f"documented: {', '.join(response.content)}"
        )

    def _validator(self, key: str) -> Draft202012Validator:
        validator = self._validators.get(key)
        if validator is None:
            schema = {"$defs": self._root_schema_defs, "$ref": f"#/$defs/{key}"}
            validator = Draft202012Validator(schema, format_checker=FORMAT_CHECKER)
            self._validators[key] = validator
        return validator

    def check_schemas(self) -> None:
        """Assert that every converted schema is itself valid JSON Schema (a self-test)."""
        Draft202012Validator.check_schema({"$defs": self._root_schema_defs})

    # -- reporting -------------------------------------------------------------------

    def _schema_location(self, root_key: str, error: ValidationError) -> str:
        """Map a jsonschema schema path back to the spec location it came from.

        jsonschema does not record ``$ref`` hops in the path, so a token that the current
        node lacks means the node is a reference to follow first.
        """
        defs = self._root_schema_defs
        key, rel = root_key, []
        node: Any = defs.get(root_key)
        for token in error.absolute_schema_path:
            if token == "$ref" and isinstance(node, dict) and "$ref" in node:
                continue
            while (
                isinstance(node, dict) and isinstance(node.get("$ref"), str) and token not in node
            ):
                key = node["$ref"].rsplit("/", 1)[1]
                node, rel = defs.get(key), []
            try:
                node = node[token]
            except (KeyError, IndexError, TypeError):
                node = None
            rel.append(token)
        label = self._compiler.labels.get(key, key)
        return label + _json_pointer(rel)

    def _describe(self, root_key: str, error: ValidationError) -> tuple[str, str]:
        pointer = _json_pointer(error.absolute_path) or "(body root)"
        line = f"at {pointer}: {error.message}"
        if error.validator == "format" and error.cause is not None:
            line += f" ({error.cause})"
        detail = f"schema {self._schema_location(root_key, error)}"
        if error.validator in ("oneOf", "anyOf") and error.context:
            closest = self._closest_alternative(error)
            reasons = "; ".join(
                f"at {_json_pointer(e.absolute_path) or '(body root)'}: {e.message}"
                for e in closest[:3]
            )
            detail += (
                f"; closest alternative "
                f"({self._schema_location(root_key, closest[0]).rsplit('/', 1)[0]}) "
                f"fails {reasons}"
            )
        return line, detail

    @staticmethod
    def _closest_alternative(error: ValidationError) -> list[ValidationError]:
        """The errors of the oneOf/anyOf branch that came nearest to matching.

        A branch whose ``type`` does not even fit the value is the least interesting; of the
        others, the one with fewest errors wins.
        """
        depth = len(error.relative_schema_path)
        branches: dict[Any, list[ValidationError]] = {}
        for sub in error.context or ():
            branch = sub.absolute_schema_path[depth] if len(sub.absolute_schema_path) > depth else 0
            branches.setdefault(branch, []).append(sub)

        def score(errors: list[ValidationError]) -> tuple[int, int]:
            wrong_type = any(
                e.validator == "type" and len(e.absolute_path) == len(error.absolute_path)
                for e in errors
            )
            return (1 if wrong_type else 0, len(errors))

        best = min(branches.values(), key=score)
        return sorted(best, key=relevance)

    def _report(self, where: str, root_key: str, body: Any, errors: list[ValidationError]) -> str:
        label = self._compiler.labels.get(root_key, root_key)
        lines = [f"{where}: the body does not match {label}:"]
        seen: set[tuple[str, str]] = set()
        ordered = sorted(errors, key=lambda e: (list(map(str, e.absolute_path)), relevance(e)))
        count = 0
        for error in ordered:
            line, detail = self._describe(root_key, error)
            if (line, detail) in seen:
                continue
            seen.add((line, detail))
            count += 1
            if count <= _MAX_REPORTED_ERRORS:
                lines.append(f"  - {line}\n      ({detail})")
        if count > _MAX_REPORTED_ERRORS:
            lines.append(f"  ... and {count - _MAX_REPORTED_ERRORS} more")
        lines.append(f"  body: {_excerpt(body, 600)}")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------
# Module-level API over the specs found for this checkout


@functools.lru_cache(maxsize=4)
def load_contract(specs_dir: Path) -> YagnaContract:
    """Load (once per folder) the contract in ``specs_dir``."""
    return YagnaContract(specs_dir)


def default_contract() -> YagnaContract:
    """The contract from the located specs; skips the calling test when there are none."""
    specs_dir, reason = locate_specs()
    if specs_dir is None:
        pytest.skip(f"yagna API contract NOT checked (responses were not validated): {reason}")
    return load_contract(specs_dir)


def validate_response(
    method: str,
    path: str,
    status: int | str,
    body: Any,
    content_type: str = "application/json",
) -> None:
    """Raise AssertionError unless yagna's contract allows this response.

    ``path`` is the request path as the client sent it (query string and scheme/host
    allowed), ``body`` the decoded JSON (``None`` for an empty body).
    """
    default_contract().validate_response(method, path, status, body, content_type)


def known_operation(method: str, path: str) -> bool:
    """Whether the specs document ``method path`` (a full request path)."""
    return default_contract().known_operation(method, path)


def operation_id(method: str, path: str) -> str | None:
    """The ``operationId`` of ``method path``, or None when the specs do not document it."""
    return default_contract().operation_id(method, path)
