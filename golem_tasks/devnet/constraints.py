"""Golem's LDAP-style constraint language, evaluated the way yagna's market resolver does.

Demands and offers on the Golem market carry constraints such as::

    (&(golem.inf.mem.gib>=0.5)
        (golem.runtime.name=vm)
        (golem.com.payment.platform.erc20-holesky-tglm.address=*))

The devnet matches every demand against every offer (and every offer's constraints against
every demand's properties), so a constraint is parsed once by :func:`compile_constraints`
into a tree of closures and then evaluated many times by :meth:`Constraint.matches`.

Semantics follow yagna's resolver (``ya-market-resolver``), because the devnet must match
what the real market would match:

* Evaluation is three-valued. A comparison on a property that is absent (or ``None``) is
  *undefined*, not false; ``!`` of undefined stays undefined; ``&`` is false if any operand
  is false, else undefined if any is; ``|`` is true if any operand is true, else undefined if
  any is. A pair matches only when the result is *true*, so an undefined result is a
  non-match. Presence (``attr=*``) of an absent property is plainly false, which makes
  ``(!(attr=*))`` the way to ask for a property to be absent.
* The property's type decides how the value text is read: numbers compare numerically
  (a value that is not a number makes the comparison false), strings compare as strings
  (``=`` with ``*`` wildcards, ``<``/``>`` lexicographically), booleans only support
  ``=true``/``=false``, lists support ``=`` only (membership, or set equality when the value
  is itself written as a list ``[a,b]``). ``(&)`` is true and ``(|)`` is false.
* A ``$v``, ``$t`` or ``$d`` suffix on the property name (``golem.runtime.version$v>=0.2.0``)
  reads a string property as a semantic version, an RFC 3339 date-time or a decimal; a
  property that does not convert makes the comparison undefined.

Extensions over yagna, all of them strictly more permissive or more precise: values may
use RFC 4515 escapes (``\\29`` or ``\\)`` for ``)``, ``\\2a`` or ``\\*`` for a literal
star), a ``*`` may start a value (``name=*vm``), ``<>`` means "not equal", an empty or
blank constraint matches everything, and trailing input is a syntax error instead of
being silently ignored.
"""

from __future__ import annotations

import datetime as _dt
import functools
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = [
    "Constraint",
    "ConstraintSyntaxError",
    "compile_constraints",
    "flatten_properties",
    "matches",
]

#: Tri-state result of evaluating a (sub)expression: True, False or None for undefined.
Tri = bool | None
Evaluator = Callable[[Mapping[str, Any]], Tri]

#: Deeper nesting than this is almost certainly garbage and would exhaust the Python stack.
MAX_DEPTH = 200
#: The key yagna's flattener uses for "this object also has a value of its own".
PROPERTY_TAG = "@tag"

_OPERATORS = ("<=", ">=", "<>", "=", "<", ">")
_NAME_STOP = frozenset("=<>~()")
_HEX = frozenset("0123456789abcdefABCDEF")


# --------------------------------------------------------------------------------------
# Errors


class ConstraintSyntaxError(ValueError):
    """A constraint text that cannot be parsed; says what is wrong and where."""

    def __init__(self, reason: str, text: str, position: int) -> None:
        self.reason = reason
        self.text = text
        self.position = position
        line_start = text.rfind("\n", 0, position) + 1
        line_end = text.find("\n", position)
        if line_end < 0:
            line_end = len(text)
        line_no = text.count("\n", 0, position) + 1
        column = position - line_start + 1
        source_line = text[line_start:line_end].replace("\t", " ")
        pointer = " " * (column - 1) + "^"
        super().__init__(
            f"{reason} at position {position} (line {line_no}, column {column})\n"
            f"    {source_line}\n    {pointer}"
        )


# --------------------------------------------------------------------------------------
# AST (kept for repr, introspection and explanations; evaluation uses compiled closures)


@dataclass(frozen=True)
class PropertyRef:
    """A property reference: ``name``, optionally ``name[aspect]`` and/or a ``$t`` type."""

    name: str
    aspect: str | None = None
    implied_type: str | None = None  # "v" version, "t" date-time, "d" decimal

    def __str__(self) -> str:
        aspect = f"[{self.aspect}]" if self.aspect is not None else ""
        implied = f"${self.implied_type}" if self.implied_type else ""
        return f"{self.name}{aspect}{implied}"


@dataclass(frozen=True)
class Value:
    """A comparison value: the unescaped text plus its wildcard structure."""

    raw: str  # verbatim source text between operator and ')'
    text: str  # unescaped; escaped stars are literal '*'
    wildcard_parts: tuple[str, ...] | None  # literal pieces between unescaped '*', or None

    @property
    def has_wildcard(self) -> bool:
        return self.wildcard_parts is not None


@dataclass(frozen=True)
class Node:
    """Base of the constraint syntax tree; ``position`` is where the clause's '(' is."""

    position: int = field(compare=False)


@dataclass(frozen=True)
class Const(Node):
    value: bool


@dataclass(frozen=True)
class And(Node):
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Or(Node):
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Not(Node):
    operand: Node


@dataclass(frozen=True)
class Present(Node):
    ref: PropertyRef


@dataclass(frozen=True)
class Compare(Node):
    ref: PropertyRef
    op: str
    value: Value


def _render(node: Node) -> str:
    """Canonical single-line text of a node, used in repr and explanations."""
    if isinstance(node, Const):
        return "()" if node.value else "(|)"
    if isinstance(node, And):
        return "(&" + "".join(_render(o) for o in node.operands) + ")"
    if isinstance(node, Or):
        return "(|" + "".join(_render(o) for o in node.operands) + ")"
    if isinstance(node, Not):
        return "(!" + _render(node.operand) + ")"
    if isinstance(node, Present):
        return f"({node.ref}=*)"
    assert isinstance(node, Compare)
    return f"({node.ref}{node.op}{node.value.raw})"


# --------------------------------------------------------------------------------------
# Parser


class _Parser:
    """Recursive-descent parser producing the AST; every error carries a position."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.n = len(text)

    def error(self, reason: str, position: int | None = None) -> ConstraintSyntaxError:
        return ConstraintSyntaxError(reason, self.text, self.pos if position is None else position)

    def skip_ws(self) -> None:
        text, n, pos = self.text, self.n, self.pos
        while pos < n and text[pos].isspace():
            pos += 1
        self.pos = pos

    def parse(self) -> Node:
        self.skip_ws()
        if self.pos == self.n:
            return Const(0, True)  # blank constraint: matches everything
        node = self.filter(0)
        self.skip_ws()
        if self.pos != self.n:
            raise self.error(
                "unexpected trailing input after the constraint "
                "(several top-level clauses must be joined with (&...) or (|...))"
            )
        return node

    def filter(self, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise self.error(f"constraint nested deeper than {MAX_DEPTH} levels")
        self.skip_ws()
        if self.pos >= self.n:
            raise self.error("unexpected end of input, expected '('")
        if self.text[self.pos] != "(":
            raise self.error(f"expected '(' but found {self.text[self.pos]!r}")
        open_pos = self.pos
        self.pos += 1
        self.skip_ws()
        if self.pos >= self.n:
            raise self.error(f"unexpected end of input: '(' at position {open_pos} is never closed")
        ch = self.text[self.pos]
        if ch == ")":
            self.pos += 1
            return Const(open_pos, True)
        if ch in "&|":
            self.pos += 1
            operands = self.operand_list(depth, open_pos, ch)
            return And(open_pos, operands) if ch == "&" else Or(open_pos, operands)
        if ch == "!":
            self.pos += 1
            self.skip_ws()
            if self.pos < self.n and self.text[self.pos] == ")":
                raise self.error("'!' needs exactly one operand, found none")
            operand = self.filter(depth + 1)
            self.skip_ws()
            if self.pos >= self.n:
                raise self.error(
                    f"unexpected end of input: '(' at position {open_pos} is never closed"
                )
            if self.text[self.pos] == "(":
                raise self.error("'!' takes exactly one operand, found a second one")
            if self.text[self.pos] != ")":
                raise self.error(f"expected ')' to close '(!' opened at position {open_pos}")
            self.pos += 1
            return Not(open_pos, operand)
        return self.item(open_pos)

    def operand_list(self, depth: int, open_pos: int, op: str) -> tuple[Node, ...]:
        operands: list[Node] = []
        while True:
            self.skip_ws()
            if self.pos >= self.n:
                raise self.error(
                    f"unexpected end of input: '({op}' at position {open_pos} is never closed"
                )
            ch = self.text[self.pos]
            if ch == ")":
                self.pos += 1
                return tuple(operands)
            if ch != "(":
                raise self.error(
                    f"expected '(' starting an operand of '{op}' or ')' closing it, found {ch!r}"
                )
            operands.append(self.filter(depth + 1))

    def item(self, open_pos: int) -> Node:
        text, n = self.text, self.n
        start = self.pos
        pos = start
        while pos < n and text[pos] not in _NAME_STOP:
            pos += 1
        if pos >= n:
            raise self.error(
                f"unexpected end of input: '(' at position {open_pos} is never closed", pos
            )
        raw_name = text[start:pos]
        name = raw_name.strip()
        if not name:
            raise self.error("empty property name", start)
        for offset, ch in enumerate(raw_name.rstrip()):
            if ch.isspace():
                raise self.error(f"whitespace inside property name {name!r}", start + offset)
        stop = text[pos]
        if stop in "()":
            raise self.error(
                f"expected a comparison operator (=, <, <=, >, >=, <>) after property name "
                f"{name!r}, found {stop!r}",
                pos,
            )
        ref = self.property_ref(name, start)
        if text.startswith("~=", pos):
            raise self.error("unsupported operator '~=' (approximate match)", pos)
        for op in _OPERATORS:
            if text.startswith(op, pos):
                break
        else:
            raise self.error(
                f"expected a comparison operator (=, <, <=, >, >=, <>) after property name "
                f"{name!r}, found {stop!r}",
                pos,
            )
        pos += len(op)
        value_start = pos
        value = self.value(value_start, open_pos)
        # Like yagna, only an unescaped lone '*' (trailing blanks allowed) means presence.
        if op == "=" and value.raw.rstrip() == "*":
            return Present(open_pos, ref)
        return Compare(open_pos, ref, op, value)

    def property_ref(self, name: str, start: int) -> PropertyRef:
        implied: str | None = None
        base = name
        if len(base) >= 2 and base[-2] == "$":
            implied = base[-1]
            if implied not in "vtd":
                raise self.error(
                    f"unknown implied type '${implied}' on property {name!r} "
                    "(use $v version, $t date-time or $d decimal)",
                    start + len(name) - 2,
                )
            base = base[:-2]
        aspect: str | None = None
        if base.endswith("]"):
            bracket = base.find("[")
            if bracket <= 0:
                raise self.error(f"malformed aspect reference in property {name!r}", start)
            aspect = base[bracket + 1 : -1]
            base = base[:bracket]
            if "[" in aspect or "]" in aspect:
                raise self.error(f"malformed aspect reference in property {name!r}", start)
        elif "[" in base or "]" in base:
            raise self.error(f"malformed aspect reference in property {name!r}", start)
        if not base:
            raise self.error("empty property name", start)
        return PropertyRef(base, aspect, implied)

    def value(self, start: int, open_pos: int) -> Value:
        text, n = self.text, self.n
        pos = start
        parts: list[str] = []
        current: list[str] = []
        starred = False
        while True:
            if pos >= n:
                raise self.error(
                    f"unexpected end of input in value: '(' at position {open_pos} is never closed",
                    pos,
                )
            ch = text[pos]
            if ch == ")":
                break
            if ch == "(":
                raise self.error(
                    "unescaped '(' in value (is a ')' missing before it? "
                    "write a literal parenthesis as \\28)",
                    pos,
                )
            if ch == "*":
                starred = True
                parts.append("".join(current))
                current = []
                pos += 1
                continue
            if ch == "\\":
                if pos + 1 >= n:
                    raise self.error("dangling '\\' at end of input", pos)
                nxt = text[pos + 1]
                if nxt in _HEX and pos + 2 < n and text[pos + 2] in _HEX:
                    current.append(chr(int(text[pos + 1 : pos + 3], 16)))
                    pos += 3
                    continue
                if nxt in "()*\\":
                    current.append(nxt)
                    pos += 2
                    continue
                current.append("\\")  # not an escape: keep the backslash, as yagna does
                pos += 1
                continue
            current.append(ch)
            pos += 1
        raw = text[start:pos]
        self.pos = pos + 1
        parts.append("".join(current))
        unescaped = "*".join(parts)
        return Value(raw, unescaped, tuple(parts) if starred else None)


# --------------------------------------------------------------------------------------
# Typed value helpers


def _parse_number(text: str) -> float | None:
    """Read a constraint value as a number, as yagna does with Rust's f64 parser."""
    s = text.strip()
    if not s or "_" in s:
        return None
    try:
        return float(s)
    except ValueError:
        return None


def _parse_decimal(text: str) -> Decimal | None:
    s = text.strip()
    if not s or "_" in s:
        return None
    try:
        d = Decimal(s)
    except InvalidOperation:
        return None
    return None if d.is_nan() else d


_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})\Z"
)


def _parse_datetime(text: str) -> _dt.datetime | None:
    """RFC 3339 date-time with a mandatory offset, normalised to UTC."""
    s = text.strip()
    if not _RFC3339.match(s):
        return None
    if s[-1] in "zZ":
        s = s[:-1] + "+00:00"
    try:
        parsed = _dt.datetime.fromisoformat(s)
    except ValueError:
        return None
    return parsed.astimezone(_dt.timezone.utc)


_SEMVER = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?\Z"
)


def _identifiers_key(ids: str) -> tuple[tuple[int, int, str], ...]:
    # Numeric identifiers sort before alphanumeric ones, numerically among themselves.
    return tuple((0, int(i), "") if i.isdigit() else (1, 0, i) for i in ids.split("."))


def _parse_version(text: str) -> tuple[Any, ...] | None:
    """A SemVer 2.0 version as a sortable key (pre-releases sort before the release)."""
    m = _SEMVER.match(text.strip())
    if not m:
        return None
    major, minor, patch, pre, build = m.groups()
    pre_key = (1,) if pre is None else (0, _identifiers_key(pre))
    build_key = () if build is None else _identifiers_key(build)
    return (int(major), int(minor), int(patch), pre_key, build_key)


_ORDER_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "=": operator.eq,
    "<>": operator.ne,
}


def _list_literal(text: str) -> tuple[str, ...] | None:
    """``[a, b]`` as written in a constraint value (yagna's list-equality form)."""
    s = text.strip()
    if len(s) < 2 or s[0] != "[" or s[-1] != "]":
        return None
    inner = s[1:-1]
    if "[" in inner or "]" in inner:
        return None
    if not inner.strip():
        return ()
    return tuple(item.strip() for item in inner.split(","))


# --------------------------------------------------------------------------------------
# Compiler: AST -> closures


def _wildcard_matcher(parts: tuple[str, ...]) -> Callable[[str], bool]:
    if len(parts) == 2 and not parts[1]:  # "prefix*"
        prefix = parts[0]
        return lambda s: s.startswith(prefix)
    if len(parts) == 2 and not parts[0]:  # "*suffix"
        suffix = parts[1]
        return lambda s: s.endswith(suffix)
    pattern = re.compile(".*".join(re.escape(p) for p in parts), re.DOTALL)
    fullmatch = pattern.fullmatch
    return lambda s: fullmatch(s) is not None


def _scalar_equals(value: Value) -> Callable[[Any], bool]:
    """Equality of one (non-list) property value with ``value``, typed by the property."""
    text = value.text
    number = _parse_number(text)
    boolean = {"true": True, "false": False}.get(text.strip())
    decimal = _parse_decimal(text)
    moment = _parse_datetime(text)
    str_match = _wildcard_matcher(value.wildcard_parts) if value.wildcard_parts else None

    def equals(prop: Any) -> bool:
        t = type(prop)
        if t is str:
            return str_match(prop) if str_match is not None else prop == text
        if t is bool:
            return boolean is not None and prop is boolean
        if t is int or t is float:
            return number is not None and prop == number
        if isinstance(prop, bool):
            return boolean is not None and bool(prop) is boolean
        if isinstance(prop, str):
            return str_match(prop) if str_match is not None else prop == text
        if isinstance(prop, Decimal):
            return decimal is not None and prop == decimal
        if isinstance(prop, (int, float)):
            return number is not None and prop == number
        if isinstance(prop, _dt.datetime):
            return moment is not None and _as_utc(prop) == moment
        if isinstance(prop, (list, tuple)):
            return any(equals(item) for item in prop)
        return False

    return equals


def _as_utc(moment: _dt.datetime) -> _dt.datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=_dt.timezone.utc)
    return moment.astimezone(_dt.timezone.utc)


def _list_equals(value: Value) -> Callable[[Sequence[Any]], bool]:
    """``=`` on a list property: set equality for ``[a,b]`` values, membership otherwise."""
    literal = _list_literal(value.text)
    if literal is None:
        item_equals = _scalar_equals(value)
        return lambda items: any(item_equals(item) for item in items)
    wanted = tuple(_scalar_equals(_plain_value(item)) for item in literal)

    def equals(items: Sequence[Any]) -> bool:
        if len(items) != len(wanted):
            return False
        return all(any(eq(item) for item in items) for eq in wanted)

    return equals


def _plain_value(text: str) -> Value:
    parts = tuple(text.split("*")) if "*" in text else None
    return Value(text, text, parts)


def _compile_compare(node: Compare) -> Evaluator:
    ref, op, value = node.ref, node.op, node.value
    key = ref.name
    if ref.aspect is not None:
        # Aspects are never carried by flat JSON properties: present or not, yagna
        # cannot resolve an aspect comparison, so it stays undefined.
        return lambda props: None
    if ref.implied_type is not None:
        return _compile_typed_compare(key, op, value, ref.implied_type)

    text = value.text
    cmp = _ORDER_OPS[op]
    number = _parse_number(text)

    if op in ("=", "<>"):
        scalar_eq = _scalar_equals(value)
        list_eq = _list_equals(value)
        negate = op == "<>"
        # Strings and numbers are by far the most common: test them inline, without a call.
        str_match = _wildcard_matcher(value.wildcard_parts) if value.wildcard_parts else None

        def evaluate_eq(props: Mapping[str, Any]) -> Tri:
            prop = props.get(key)
            if prop is None:
                return None
            t = type(prop)
            if t is str:
                result = prop == text if str_match is None else str_match(prop)
            elif t is float or t is int:
                result = number is not None and prop == number
            elif t is list or t is tuple:
                result = list_eq(prop)
            elif t is dict:
                return None
            else:
                result = scalar_eq(prop)
            return result is not negate

        return evaluate_eq

    decimal = _parse_decimal(text)
    moment = _parse_datetime(text)

    def evaluate_order(props: Mapping[str, Any]) -> Tri:
        prop = props.get(key)
        if prop is None:
            return None
        t = type(prop)
        if t is str:
            return cmp(prop, text)
        if t is int or t is float:
            return number is not None and cmp(prop, number)
        if t is bool or t is list or t is tuple:
            return False  # ordering is meaningless for booleans and lists
        if t is dict:
            return None
        if isinstance(prop, bool):
            return False
        if isinstance(prop, str):
            return cmp(str(prop), text)
        if isinstance(prop, Decimal):
            return decimal is not None and cmp(prop, decimal)
        if isinstance(prop, (int, float)):
            return number is not None and cmp(prop, number)
        if isinstance(prop, _dt.datetime):
            return moment is not None and cmp(_as_utc(prop), moment)
        return False

    return evaluate_order


def _compile_typed_compare(key: str, op: str, value: Value, implied: str) -> Evaluator:
    """``name$v``/``$t``/``$d``: convert a string property, then compare by that type."""
    convert: Callable[[str], Any]
    if implied == "v":
        convert = _parse_version
    elif implied == "t":
        convert = _parse_datetime
    else:
        convert = _parse_decimal
    target = convert(value.text)
    cmp = _ORDER_OPS[op]

    def evaluate(props: Mapping[str, Any]) -> Tri:
        prop = props.get(key)
        if prop is None:
            return None
        if isinstance(prop, str):
            converted = convert(prop)
            if converted is None:
                return None
        elif implied == "t" and isinstance(prop, _dt.datetime):
            converted = _as_utc(prop)
        elif implied == "d" and isinstance(prop, Decimal) and not prop.is_nan():
            converted = prop
        else:
            return None  # yagna converts only string properties
        return target is not None and cmp(converted, target)

    return evaluate


def _flattened(node: And | Or, kind: type[And] | type[Or]) -> list[Node]:
    """Operands of nested groups of the same kind, inlined: both are associative."""
    out: list[Node] = []
    for operand in node.operands:
        if isinstance(operand, kind):
            out.extend(_flattened(operand, kind))
        else:
            out.append(operand)
    return out


def _compile(node: Node) -> Evaluator:
    if isinstance(node, Const):
        constant = node.value
        return lambda props: constant
    if isinstance(node, Present):
        if node.ref.aspect is not None:
            return lambda props: False
        key = node.ref.name

        def evaluate_present(props: Mapping[str, Any]) -> Tri:
            prop = props.get(key)
            return prop is not None and type(prop) is not dict

        return evaluate_present
    if isinstance(node, Compare):
        return _compile_compare(node)
    if isinstance(node, Not):
        inner = _compile(node.operand)

        def evaluate_not(props: Mapping[str, Any]) -> Tri:
            result = inner(props)
            return None if result is None else not result

        return evaluate_not
    if isinstance(node, And):
        operands = tuple(_compile(o) for o in _flattened(node, And))
        if len(operands) == 1:
            return operands[0]

        def evaluate_and(props: Mapping[str, Any]) -> Tri:
            undefined = False
            for operand in operands:
                result = operand(props)
                if result is False:
                    return False
                if result is None:
                    undefined = True
            return None if undefined else True

        return evaluate_and
    if isinstance(node, Or):
        operands = tuple(_compile(o) for o in _flattened(node, Or))
        if len(operands) == 1:
            return operands[0]

        def evaluate_or(props: Mapping[str, Any]) -> Tri:
            undefined = False
            for operand in operands:
                result = operand(props)
                if result is True:
                    return True
                if result is None:
                    undefined = True
            return None if undefined else False

        return evaluate_or
    raise TypeError(f"unknown constraint node {node!r}")  # pragma: no cover


# --------------------------------------------------------------------------------------
# Public API


class Constraint:
    """A compiled constraint: parse once, then evaluate against many property sets."""

    __slots__ = ("_evaluate", "text", "tree")

    def __init__(self, text: str, tree: Node) -> None:
        self.text = text
        self.tree = tree
        self._evaluate = _compile(tree)

    def matches(self, properties: Mapping[str, Any]) -> bool:
        """True only if the constraint resolves to true on these flat properties."""
        return self._evaluate(properties) is True

    def evaluate(self, properties: Mapping[str, Any]) -> bool | None:
        """The three-valued result: True, False, or None when it depends on absent properties."""
        return self._evaluate(properties)

    def property_names(self) -> frozenset[str]:
        """Names of all properties the constraint refers to."""
        names: set[str] = set()
        stack: list[Node] = [self.tree]
        while stack:
            node = stack.pop()
            if isinstance(node, (And, Or)):
                stack.extend(node.operands)
            elif isinstance(node, Not):
                stack.append(node.operand)
            elif isinstance(node, (Present, Compare)):
                names.add(node.ref.name)
        return frozenset(names)

    def explain(self, properties: Mapping[str, Any]) -> list[str]:
        """The leaf clauses that keep this constraint from being true, for diagnostics.

        Each entry is the clause text followed by why: the property's actual value, or
        that it is absent. Empty when :meth:`matches` is true.
        """
        if self.matches(properties):
            return []
        out: list[str] = []
        self._explain(self.tree, properties, out, negated=False)
        return out

    def _explain(
        self, node: Node, props: Mapping[str, Any], out: list[str], *, negated: bool
    ) -> None:
        result = _compile(node)(props)
        wanted = not negated
        if result is wanted:
            return
        if isinstance(node, (And, Or)):
            for operand in node.operands:
                self._explain(operand, props, out, negated=negated)
            return
        if isinstance(node, Not):
            self._explain(node.operand, props, out, negated=not negated)
            return
        clause = _render(node)
        if negated:
            clause = f"(!{clause})"
        if isinstance(node, (Present, Compare)):
            name = node.ref.name
            if props.get(name) is None:
                out.append(f"{clause}: property {name!r} is absent")
            else:
                out.append(f"{clause}: {name}={props[name]!r}")
        else:
            out.append(f"{clause}: always {result}")

    def __repr__(self) -> str:
        return f"Constraint({_render(self.tree)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Constraint) and other.tree == self.tree

    def __hash__(self) -> int:
        return hash(self.tree)


def compile_constraints(text: str) -> Constraint:
    """Parse constraint text once into an object that evaluates fast.

    Raises :class:`ConstraintSyntaxError` (a :class:`ValueError`) with the position of the
    first problem.
    """
    if not isinstance(text, str):
        raise TypeError(f"constraint text must be str, not {type(text).__name__}")
    return Constraint(text, _Parser(text).parse())


@functools.lru_cache(maxsize=512)
def _cached(text: str) -> Constraint:
    return compile_constraints(text)


def matches(text: str, properties: Mapping[str, Any]) -> bool:
    """Convenience: does ``text`` match these flat properties (compiled texts are cached)."""
    return _cached(text).matches(properties)


def flatten_properties(props: Mapping[str, Any]) -> dict[str, Any]:
    """Flatten nested property objects into dotted keys, as yagna does before matching.

    ``{"golem": {"inf": {"mem.gib": 8}}}`` becomes ``{"golem.inf.mem.gib": 8}``; lists are
    left alone; an object's ``"@tag"`` member is the value of the object's own key; an empty
    object is kept as ``{}`` (which matching treats as absent, like yagna).
    """
    if not isinstance(props, Mapping):
        raise TypeError(f"properties must be a mapping, not {type(props).__name__}")
    out: dict[str, Any] = {}
    _flatten_into("", props, out)
    return out


def _flatten_into(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        if not value:
            if prefix:
                out[prefix] = {}
            return
        for key, item in value.items():
            if key == PROPERTY_TAG:
                if prefix:
                    out[prefix] = item
                continue
            _flatten_into(f"{prefix}.{key}" if prefix else str(key), item, out)
    else:
        out[prefix] = value
