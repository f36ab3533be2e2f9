"""Tests of the devnet's constraint language: parsing, yagna's matching semantics, speed."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from golem.payload.vm import VmCaps

from golem_tasks.devnet import constraints as cmod
from golem_tasks.devnet.constraints import (
    Constraint,
    ConstraintSyntaxError,
    compile_constraints,
    flatten_properties,
    matches,
)

ADDRESS_KEY = "golem.com.payment.platform.erc20-holesky-tglm.address"


def ev(text: str, props: dict[str, Any]) -> bool | None:
    """Three-valued result, so tests can tell false from undefined."""
    return compile_constraints(text).evaluate(props)


# --------------------------------------------------------------------------------------
# Comparison operators


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(mem=8)", True),
        ("(mem=8.0)", True),
        ("(mem=7.9)", False),
        ("(mem>=8)", True),
        ("(mem>=8.5)", False),
        ("(mem>7)", True),
        ("(mem>8)", False),
        ("(mem<=8)", True),
        ("(mem<=7)", False),
        ("(mem<9)", True),
        ("(mem<8)", False),
        ("(mem<>8)", False),
        ("(mem<>9)", True),
        ("(mem>=1e0)", True),
        ("(mem>= 4)", True),  # blanks around a number are tolerated
        ("(mem>=-1)", True),
        ("(mem>=four)", False),  # not a number: the comparison is false, not an error
        ("(mem=8*)", False),  # wildcards are for strings only
    ],
)
def test_numeric_property_compares_numerically(text: str, expected: bool) -> None:
    assert ev(text, {"mem": 8}) is expected
    assert ev(text, {"mem": 8.0}) is expected


def test_float_and_int_properties_compare_by_value() -> None:
    assert ev("(golem.inf.mem.gib>=0.5)", {"golem.inf.mem.gib": 0.5}) is True
    assert ev("(golem.inf.mem.gib>=0.5)", {"golem.inf.mem.gib": 0.49}) is False
    assert ev("(golem.inf.cpu.threads>=1)", {"golem.inf.cpu.threads": 4}) is True
    big = 1_795_627_096_006  # millisecond timestamps, as golem-core sends expirations
    assert ev(f"(golem.srv.comp.expiration>{big - 1})", {"golem.srv.comp.expiration": big})
    assert ev(f"(golem.srv.comp.expiration>{big})", {"golem.srv.comp.expiration": big}) is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(name=vm)", True),
        ("(name=VM)", False),  # case-sensitive
        ("(name=vm )", False),  # the value is taken verbatim for strings
        ("(name<>vm)", False),
        ("(name<>wasm)", True),
        ("(name<wn)", True),  # lexicographic
        ("(name<=vm)", True),
        ("(name>vl)", True),
        ("(name>=vn)", False),
    ],
)
def test_string_property_compares_as_string(text: str, expected: bool) -> None:
    assert ev(text, {"name": "vm"}) is expected


def test_numeric_looking_strings_compare_as_strings() -> None:
    # yagna types a property by its JSON value: "10" is a string, so "10" < "9".
    assert ev("(v<9)", {"v": "10"}) is True
    assert ev("(v<9)", {"v": 10}) is False
    assert ev("(v=10)", {"v": "10"}) is True
    assert ev("(v=10.0)", {"v": "10"}) is False


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("v*", "vm", True),
        ("v*", "v", True),
        ("v*", "wasm", False),
        ("*vm", "nvm", True),
        ("*vm", "vmx", False),
        ("v*m", "vxxm", True),
        ("v*m", "vxxn", False),
        ("*", "anything", True),  # presence, see below
        ("a*b*c", "a--b--c", True),
        ("a*b*c", "a--c--b", False),
        ("a.c*", "abcd", False),  # regex metacharacters are literal
        ("a.c*", "a.cd", True),
        ("**", "", True),
        ("x\\2ay", "x*y", True),  # escaped star is a literal star
        ("x\\2ay", "xzzy", False),
        ("x\\*y", "x*y", True),
        ("x\\*y", "xzzy", False),
        ("*\\2a", "abc*", True),
    ],
)
def test_wildcards(pattern: str, value: str, expected: bool) -> None:
    assert ev(f"(golem.runtime.name={pattern})", {"golem.runtime.name": value}) is expected


def test_wildcard_applies_to_equality_only() -> None:
    assert ev("(name>v*)", {"name": "vm"}) is True  # plain string comparison with "v*"
    assert ev("(name<v*)", {"name": "vm"}) is False


def test_escapes_in_values() -> None:
    props = {"p": "f(x)", "q": "a\\b", "r": "50%"}
    assert ev("(p=f\\28x\\29)", props) is True
    assert ev("(p=f\\(x\\))", props) is True
    assert ev("(q=a\\5cb)", props) is True
    assert ev("(q=a\\\\b)", props) is True
    assert ev("(r=50\\25)", props) is True
    # A backslash that starts no escape is kept, as yagna (which has no escapes) does.
    assert ev("(q=a\\b)", props) is True


# --------------------------------------------------------------------------------------
# Presence and absent properties


def test_presence() -> None:
    c = compile_constraints(f"({ADDRESS_KEY}=*)")
    assert c.evaluate({ADDRESS_KEY: "0xabc"}) is True
    assert c.evaluate({ADDRESS_KEY: ""}) is True
    assert c.evaluate({ADDRESS_KEY: 0}) is True
    assert c.evaluate({ADDRESS_KEY: False}) is True
    assert c.evaluate({ADDRESS_KEY: []}) is True
    # Presence of an absent property is plainly false (not undefined), so `!` inverts it.
    assert c.evaluate({}) is False
    assert c.evaluate({ADDRESS_KEY: None}) is False  # JSON null: yagna drops the property
    assert ev(f"(!({ADDRESS_KEY}=*))", {}) is True
    assert ev(f"(!({ADDRESS_KEY}=*))", {ADDRESS_KEY: "0x"}) is False


def test_presence_allows_trailing_blanks_like_yagna() -> None:
    assert ev("(a=*  )", {"a": 1}) is True
    assert ev("(a=*  )", {}) is False


@pytest.mark.parametrize("op", ["=", "<", "<=", ">", ">=", "<>"])
def test_comparison_on_absent_property_is_undefined(op: str) -> None:
    c = compile_constraints(f"(golem.inf.gpu.count{op}1)")
    assert c.evaluate({"golem.inf.mem.gib": 8}) is None
    assert c.evaluate({"golem.inf.gpu.count": None}) is None
    assert not c.matches({})


def test_not_of_undefined_is_undefined_and_does_not_match() -> None:
    # yagna's resolver: Not(Undefined) = Undefined, and only True makes a match.
    c = compile_constraints("(!(golem.node.debug.subnet=devnet))")
    assert c.evaluate({}) is None
    assert c.matches({}) is False
    assert c.matches({"golem.node.debug.subnet": "public"}) is True
    assert c.matches({"golem.node.debug.subnet": "devnet"}) is False


def test_three_valued_and_or() -> None:
    absent = "(missing=1)"
    true, false = "(a=1)", "(a=2)"
    props = {"a": 1}
    assert ev(f"(&{true}{absent})", props) is None
    assert ev(f"(&{absent}{false})", props) is False  # false wins over undefined
    assert ev(f"(|{false}{absent})", props) is None
    assert ev(f"(|{absent}{true})", props) is True  # true wins over undefined
    assert ev(f"(!(&{true}{absent}))", props) is None
    assert ev(f"(!(|{false}{absent}))", props) is None


# --------------------------------------------------------------------------------------
# Booleans, lists, typed references


def test_booleans() -> None:
    props = {"golem.srv.caps.multi-activity": True, "off": False}
    assert ev("(golem.srv.caps.multi-activity=true)", props) is True
    assert ev("(golem.srv.caps.multi-activity=false)", props) is False
    assert ev("(off=false)", props) is True
    assert ev("(off=true)", props) is False
    # yagna parses booleans with Rust's strict `bool::from_str`: "True" is not a boolean.
    assert ev("(golem.srv.caps.multi-activity=True)", props) is False
    assert ev("(golem.srv.caps.multi-activity=1)", props) is False  # bool is not a number
    assert ev("(golem.srv.caps.multi-activity>false)", props) is False  # no ordering
    assert ev("(golem.srv.caps.multi-activity<>false)", props) is True


def test_bool_is_not_treated_as_int() -> None:
    assert ev("(flag>=0)", {"flag": True}) is False
    assert ev("(count>=0)", {"count": 0}) is True


def test_list_membership() -> None:
    props = {"golem.runtime.capabilities": ["inet", "vpn", "manifest-support"]}
    assert ev("(golem.runtime.capabilities=vpn)", props) is True
    assert ev("(golem.runtime.capabilities=gpu)", props) is False
    assert ev("(golem.runtime.capabilities=manifest*)", props) is True
    assert ev("(golem.runtime.capabilities<>gpu)", props) is True
    assert ev("(golem.runtime.capabilities<>vpn)", props) is False
    assert ev("(golem.runtime.capabilities>a)", props) is False  # ordering: meaningless
    assert ev("(golem.runtime.capabilities=*)", props) is True
    assert ev("(caps=vpn)", {"caps": []}) is False


def test_list_of_numbers_and_mixed() -> None:
    props = {"golem.com.pricing.model.linear.coeffs": [0.1, 0.2, 0.0], "mixed": ["a", 2, True]}
    assert ev("(golem.com.pricing.model.linear.coeffs=0.2)", props) is True
    assert ev("(golem.com.pricing.model.linear.coeffs=0.3)", props) is False
    assert ev("(mixed=2)", props) is True
    assert ev("(mixed=true)", props) is True
    assert ev("(mixed=a)", props) is True


def test_list_literal_means_set_equality() -> None:
    props = {"caps": ["vpn", "inet"]}
    assert ev("(caps=[vpn,inet])", props) is True
    assert ev("(caps=[inet, vpn])", props) is True  # order and blanks do not matter
    assert ev("(caps=[vpn])", props) is False  # lengths differ
    assert ev("(caps=[vpn,gpu])", props) is False
    assert ev("(caps=[])", {"caps": []}) is True
    assert ev("(nums=[1,2])", {"nums": [2.0, 1]}) is True


def test_version_references() -> None:
    props = {"golem.runtime.version": "0.3.1", "bad": "latest", "num": 3}
    assert ev("(golem.runtime.version$v>=0.2.0)", props) is True
    assert ev("(golem.runtime.version$v>=0.10.0)", props) is False  # not lexicographic
    assert ev("(golem.runtime.version>=0.10.0)", props) is True  # ...which plain strings are
    assert ev("(golem.runtime.version$v=0.3.1)", props) is True
    assert ev("(golem.runtime.version$v<0.3.1)", props) is False
    assert ev("(golem.runtime.version$v>0.3.1-rc.1)", props) is True  # pre-release sorts first
    assert ev("(v$v<1.0.0)", {"v": "1.0.0-alpha.10"}) is True
    assert ev("(v$v>1.0.0-alpha.2)", {"v": "1.0.0-alpha.10"}) is True  # numeric identifiers
    assert ev("(v$v>1.0.0-alpha.beta)", {"v": "1.0.0-alpha.10"}) is False  # numeric < alpha
    assert ev("(golem.runtime.version$v>=nonsense)", props) is False
    # A property that does not convert leaves the comparison undefined, as in yagna.
    assert ev("(bad$v>=0.1.0)", props) is None
    assert ev("(num$v>=0.1.0)", props) is None
    assert ev("(missing$v>=0.1.0)", props) is None


def test_datetime_references() -> None:
    props = {
        "ts": "2024-05-01T12:00:00Z",
        "obj": dt.datetime(2024, 5, 1, 12, tzinfo=dt.timezone.utc),
    }
    assert ev("(ts$t>2024-05-01T11:59:59Z)", props) is True
    assert ev("(ts$t>2024-05-01T14:00:00+02:00)", props) is False  # the same instant
    assert ev("(ts$t=2024-05-01T14:00:00+02:00)", props) is True
    assert ev("(ts$t<2024-05-01T12:00:00.5Z)", props) is True
    assert ev("(obj$t>=2024-05-01T12:00:00Z)", props) is True
    assert ev("(obj>=2024-05-01T12:00:00Z)", props) is True  # datetime objects compare natively
    assert ev("(ts$t>yesterday)", props) is False
    assert ev("(ts$t>2024-05-01T11:59:59)", props) is False  # RFC 3339 needs an offset
    assert ev("(x$t>2024-05-01T11:59:59Z)", {"x": "soon"}) is None


def test_decimal_references() -> None:
    props = {"price": "0.30000000000000000001", "dec": Decimal("1.5"), "num": 1.5}
    assert ev("(price$d>0.3)", props) is True  # beyond float precision
    assert ev("(price>0.3)", props) is True  # as a string, too, by luck of the digits
    assert ev("(dec$d=1.50)", props) is True
    assert ev("(dec>=1.5)", props) is True  # Decimal objects compare numerically
    assert ev("(num$d=1.5)", props) is None  # yagna converts only string properties
    assert ev("(price$d>abc)", props) is False


def test_aspect_references_are_undefined() -> None:
    # Flat JSON properties carry no aspects, so yagna can never resolve these.
    assert ev("(golem.inf.mem.gib[unit]=GiB)", {"golem.inf.mem.gib": 8}) is None
    assert ev("(golem.inf.mem.gib[unit]=*)", {"golem.inf.mem.gib": 8}) is False


def test_dict_value_counts_as_absent() -> None:
    # An empty object survives yagna's flattening but is dropped by its property parser.
    assert ev("(a=*)", {"a": {}}) is False
    assert ev("(a=x)", {"a": {}}) is None
    assert ev("(a>1)", {"a": {}}) is None


# --------------------------------------------------------------------------------------
# Grouping, nesting, whitespace


def test_and_or_not_nesting() -> None:
    props = {"a": 1, "b": "x", "c": [1, 2]}
    assert ev("(&(a=1)(b=x))", props) is True
    assert ev("(&(a=1)(b=y))", props) is False
    assert ev("(|(a=2)(b=x))", props) is True
    assert ev("(|(a=2)(b=y))", props) is False
    assert ev("(!(a=2))", props) is True
    assert ev("(!(!(a=1)))", props) is True
    assert ev("(&(|(a=2)(&(b=x)(!(c=3))))(c=2))", props) is True
    assert ev("(&(|(a=2)(&(b=x)(!(c=2))))(c=2))", props) is False
    assert ev("(&(a=1))", props) is True  # single operand
    assert ev("(|(a=1))", props) is True


def test_empty_groups() -> None:
    assert ev("(&)", {}) is True
    assert ev("(|)", {}) is False
    assert ev("()", {}) is True
    assert ev("(&()(a=1))", {"a": 1}) is True
    assert ev("(!(&))", {}) is False
    assert ev("(!(|))", {}) is True


@pytest.mark.parametrize("text", ["", "   ", "\n\t\n"])
def test_blank_constraint_matches_everything(text: str) -> None:
    c = compile_constraints(text)
    assert c.matches({})
    assert c.matches({"anything": 1})


def test_whitespace_between_clauses_and_around_operators() -> None:
    props = {"a": 1, "b": "x"}
    texts = [
        "(&(a=1)\n\t(b=x))",  # golem-core
        "(&\n  (a=1)\n  (b=x)\n)",  # yagna's agreement-utils
        "  ( & (a=1) (b=x) )  ",
        "(\n|\n(a=2)\r\n(b=x)\n)",
        "( ! (a=2) )",
        "(&(  a  =1)(b=x))",  # blanks around a property name are dropped
    ]
    for text in texts:
        assert ev(text, props) is True, text


def test_yagna_provider_offer_constraints_format() -> None:
    """The multi-line format ya-provider writes, checked against a demand's properties."""
    now_ms = 1_700_000_000_000
    offer_constraints = (
        f"(&\n  (golem.srv.comp.expiration>{now_ms})\n  (golem.node.debug.subnet=public)\n)"
    )
    demand_props = {
        "golem.srv.comp.expiration": now_ms + 1_800_000,
        "golem.node.debug.subnet": "public",
    }
    c = compile_constraints(offer_constraints)
    assert c.matches(demand_props)
    assert not c.matches({**demand_props, "golem.srv.comp.expiration": now_ms})
    assert not c.matches({**demand_props, "golem.node.debug.subnet": "devnet"})
    assert c.evaluate({"golem.node.debug.subnet": "public"}) is None


def test_property_names_with_golem_punctuation() -> None:
    props = {"golem.com.payment.debit-notes.accept-timeout?": 120, "a!b": 1, "x_y-z": "q"}
    assert ev("(golem.com.payment.debit-notes.accept-timeout?>=60)", props) is True
    assert ev("(a!b=1)", props) is True
    assert ev("(x_y-z=q)", props) is True


def test_values_may_contain_colons_slashes_and_spaces() -> None:
    props = {
        "golem.srv.comp.task_package": "hash:sha3:abc:http://girepo.dev.golem.network:8000/x",
        "golem.node.id.name": "my node",
    }
    text = "(golem.srv.comp.task_package=hash:sha3:abc:http://girepo.dev.golem.network:8000/x)"
    assert ev(text, props) is True
    assert ev("(golem.srv.comp.task_package=hash:sha3:*)", props) is True
    assert ev("(golem.node.id.name=my node)", props) is True
    assert ev("(golem.node.id.name=my*)", props) is True


def test_empty_value_matches_empty_string() -> None:
    assert ev("(a=)", {"a": ""}) is True
    assert ev("(a=)", {"a": "x"}) is False


# --------------------------------------------------------------------------------------
# Syntax errors


@pytest.mark.parametrize(
    ("text", "position", "reason"),
    [
        ("x", 0, "expected '('"),
        ("(a=b", 4, "never closed"),
        ("(&(a=b)(c=d)", 12, "never closed"),
        ("(&(a=b)x)", 7, "expected '(' starting an operand"),
        ("(a~=b)", 2, "unsupported operator '~='"),
        ("(a~b)", 2, "expected a comparison operator"),
        ("(a)", 2, "expected a comparison operator"),
        ("(a b=c)", 2, "whitespace inside property name"),
        ("(=b)", 1, "empty property name"),
        ("(  =b)", 3, "empty property name"),
        ("(a=b)(c=d)", 5, "trailing input"),
        ("(a=b) x", 6, "trailing input"),
        ("(!)", 2, "needs exactly one operand"),
        ("(!(a=b)(c=d))", 7, "exactly one operand"),
        ("(!(a=b)", 7, "never closed"),
        ("(!(a=b)x)", 7, "expected ')'"),
        ("(&(a=b(c=d))", 6, "unescaped '('"),
        ("(a=b\\", 4, "dangling"),
        ("(a$x=1)", 2, "unknown implied type"),
        ("(a[x=1)", 1, "malformed aspect"),
        ("(a]x=1)", 1, "malformed aspect"),
        ("(", 1, "never closed"),
        (")", 0, "expected '('"),
        ("(&\n\t(a=1)\n\t(b c=2))", 13, "whitespace inside property name"),
    ],
)
def test_syntax_errors_report_position_and_reason(text: str, position: int, reason: str) -> None:
    with pytest.raises(ConstraintSyntaxError) as info:
        compile_constraints(text)
    err = info.value
    assert err.position == position, str(err)
    assert reason in err.reason
    assert isinstance(err, ValueError)
    assert f"at position {position}" in str(err)
    assert err.text == text


def test_syntax_error_message_points_at_line_and_column() -> None:
    text = "(&(a=1)\n\t(b c=2))"
    with pytest.raises(ConstraintSyntaxError) as info:
        compile_constraints(text)
    message = str(info.value)
    assert "line 2, column 4" in message
    assert message.splitlines()[-1].index("^") == message.splitlines()[-2].index("c") - 1


def test_nesting_limit() -> None:
    deep = "(!" * (cmod.MAX_DEPTH + 5) + "(a=1)" + ")" * (cmod.MAX_DEPTH + 5)
    with pytest.raises(ConstraintSyntaxError, match="nested deeper"):
        compile_constraints(deep)
    ok = "(!" * 100 + "(a=1)" + ")" * 100
    assert compile_constraints(ok).matches({"a": 1})


def test_non_string_text_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        compile_constraints(None)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# flatten_properties


def test_flatten_nested_properties() -> None:
    nested = {
        "golem": {
            "inf": {"mem.gib": 8.0, "storage": {"gib": 20}},
            "runtime": {"name": "vm", "capabilities": ["vpn", {"not": "flattened"}]},
            "srv.caps.multi-activity": True,
        },
        "flat.key": 1,
        "nothing": None,
    }
    assert flatten_properties(nested) == {
        "golem.inf.mem.gib": 8.0,
        "golem.inf.storage.gib": 20,
        "golem.runtime.name": "vm",
        "golem.runtime.capabilities": ["vpn", {"not": "flattened"}],
        "golem.srv.caps.multi-activity": True,
        "flat.key": 1,
        "nothing": None,
    }


def test_flatten_is_identity_on_flat_properties() -> None:
    flat = {"golem.inf.mem.gib": 8.0, "golem.runtime.capabilities": ["vpn"]}
    assert flatten_properties(flat) == flat


def test_flatten_tag_and_empty_objects() -> None:
    # "@tag" holds the value of a key that also has children (yagna's convention).
    nested = {"golem": {"srv": {"comp": {"payload": {"@tag": "abc", "sig": "s"}}}}}
    assert flatten_properties(nested) == {
        "golem.srv.comp.payload": "abc",
        "golem.srv.comp.payload.sig": "s",
    }
    assert flatten_properties({"a": {}}) == {"a": {}}
    assert flatten_properties({}) == {}


def test_flatten_rejects_non_mappings() -> None:
    with pytest.raises(TypeError):
        flatten_properties([("a", 1)])  # type: ignore[arg-type]


def test_flattened_nested_properties_match() -> None:
    offer = {"golem": {"inf": {"mem": {"gib": 8.0}}, "runtime": {"name": "vm"}}}
    assert matches("(&(golem.inf.mem.gib>=4)(golem.runtime.name=vm))", flatten_properties(offer))


# --------------------------------------------------------------------------------------
# Convenience API, introspection


def test_matches_convenience_caches_compiled_constraints() -> None:
    text = "(&(cache.test=1)(cache.other=*))"
    before = cmod._cached.cache_info().hits
    assert matches(text, {"cache.test": 1, "cache.other": "x"})
    assert not matches(text, {"cache.test": 2, "cache.other": "x"})
    assert cmod._cached.cache_info().hits == before + 1
    with pytest.raises(ConstraintSyntaxError):
        matches("(bad", {})


def test_constraint_introspection() -> None:
    c = compile_constraints("(&(a>=1)\n\t(|(b=x*)(!(c=*))))")
    assert isinstance(c, Constraint)
    assert c.property_names() == {"a", "b", "c"}
    assert repr(c) == "Constraint('(&(a>=1)(|(b=x*)(!(c=*))))')"
    assert c == compile_constraints("(& (a>=1) (|(b=x*)(!(c=*))) )")
    assert hash(c) == hash(compile_constraints("(&(a>=1)(|(b=x*)(!(c=*))))"))
    assert c.text.startswith("(&(a>=1)\n")


def test_explain_lists_the_clauses_that_fail() -> None:
    c = compile_constraints("(&(golem.inf.mem.gib>=4)(golem.runtime.name=vm)(gpu=*)(!(bad=*)))")
    props = {"golem.inf.mem.gib": 2, "golem.runtime.name": "vm", "bad": 1}
    assert c.explain(props) == [
        "(golem.inf.mem.gib>=4): golem.inf.mem.gib=2",
        "(gpu=*): property 'gpu' is absent",
        "(!(bad=*)): bad=1",
    ]
    assert c.explain({"golem.inf.mem.gib": 8, "golem.runtime.name": "vm", "gpu": 1}) == []


# --------------------------------------------------------------------------------------
# What golem-core 0.7.8 actually sends


async def _golem_core_demand(
    subnet: str = "public", capabilities: list[VmCaps] | None = None
) -> tuple[str, dict[str, Any]]:
    """Build a demand the way golem-core's demand managers do, without touching a network.

    The payment constraint comes from the allocation's demand decorations, which golem-core
    parses and re-serializes; the decoration below is what yagna returns for holesky tGLM.
    """
    from datetime import timedelta

    from golem.payload import GenericPayload, RepositoryVmPayload, defaults
    from golem.resources import DemandBuilder
    from ya_payment import models

    decoration = GenericPayload.from_raw_api_data(
        [
            models.MarketProperty(key=ADDRESS_KEY, value="0x" + "ab" * 20),
            models.MarketProperty(key="golem.com.payment.protocol.version", value="3"),
        ],
        [f"({ADDRESS_KEY}=*)"],
    )
    builder = DemandBuilder()
    for spec in [
        defaults.ActivityInfo(lifetime=timedelta(minutes=30), multi_activity=True),
        defaults.NodeInfo(subnet_tag=subnet),
        defaults.PaymentInfo(),
        decoration,
        RepositoryVmPayload(
            package_url="hash:sha3:" + "0" * 56 + ":http://girepo.example:8000/img.gvmi",
            capabilities=capabilities or [],
        ),
    ]:
        await builder.add(spec)
    return builder.constraints.serialize(), builder.properties.serialize()


def _provider_offer(**overrides: Any) -> dict[str, Any]:
    offer: dict[str, Any] = {
        "golem.inf.mem.gib": 8.0,
        "golem.inf.storage.gib": 40.0,
        "golem.inf.cpu.threads": 4,
        "golem.inf.cpu.cores": 2,
        "golem.runtime.name": "vm",
        "golem.runtime.version": "0.3.0",
        "golem.runtime.capabilities": ["inet", "vpn", "manifest-support", "start-entrypoint"],
        "golem.node.debug.subnet": "public",
        "golem.node.id.name": "devnet-provider-1",
        ADDRESS_KEY: "0x" + "cd" * 20,
        "golem.com.payment.platform.erc20-holesky-tglm.address": "0x" + "cd" * 20,
        "golem.com.pricing.model": "linear",
        "golem.com.pricing.model.linear.coeffs": [0.0001, 0.0002, 0.0],
        "golem.com.usage.vector": ["golem.usage.cpu_sec", "golem.usage.duration_sec"],
        "golem.com.scheme": "payu",
        "golem.srv.caps.multi-activity": True,
    }
    for name, value in overrides.items():
        key = name.replace("__", ".")
        if value is _DROP:
            offer.pop(key, None)
        else:
            offer[key] = value
    return offer


_DROP = object()


async def test_golem_core_repository_vm_demand_text_parses_and_matches() -> None:
    text, props = await _golem_core_demand()
    # golem-core's pretty-printing: first operand right after '&', the rest after "\n\t".
    assert text.startswith("(&(golem.node.debug.subnet=public)\n\t")
    assert f"\n\t({ADDRESS_KEY}=*)" in text
    assert "(golem.inf.mem.gib>=0.5)" in text and "(golem.inf.storage.gib>=2.0)" in text
    demand = compile_constraints(text)
    assert demand.property_names() == {
        "golem.node.debug.subnet",
        ADDRESS_KEY,
        "golem.runtime.name",
        "golem.inf.mem.gib",
        "golem.inf.storage.gib",
        "golem.inf.cpu.threads",
    }
    assert demand.matches(_provider_offer())
    # The demand's own properties carry what providers' offer constraints look at.
    assert props["golem.node.debug.subnet"] == "public"
    assert isinstance(props["golem.srv.comp.expiration"], int)


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"golem__inf__mem__gib": 0.25}, "too little memory"),
        ({"golem__inf__storage__gib": 1.5}, "too little storage"),
        ({"golem__inf__cpu__threads": 0}, "no threads"),
        ({"golem__runtime__name": "wasmtime"}, "other runtime"),
        ({"golem__node__debug__subnet": "devnet-beta"}, "other subnet"),
        ({ADDRESS_KEY.replace(".", "__"): _DROP}, "no account on the payment platform"),
        ({"golem__inf__mem__gib": _DROP}, "memory not advertised (undefined)"),
        # A string compares as a string, like in yagna: "10" < "2.0" lexicographically.
        ({"golem__inf__storage__gib": "10"}, "storage advertised as a string"),
    ],
)
async def test_golem_core_demand_rejects_unsuitable_offers(
    override: dict[str, Any], reason: str
) -> None:
    text, _ = await _golem_core_demand()
    assert not compile_constraints(text).matches(_provider_offer(**override)), reason


async def test_golem_core_list_constraint_for_capabilities() -> None:
    text, _ = await _golem_core_demand(capabilities=["vpn", "inet"])
    # A list-valued constraint becomes a nested (&...) group, one clause per element.
    assert "(&(golem.runtime.capabilities=vpn)\n\t(golem.runtime.capabilities=inet))" in text
    demand = compile_constraints(text)
    assert demand.matches(_provider_offer())
    assert not demand.matches(_provider_offer(golem__runtime__capabilities=["inet"]))
    assert not demand.matches(_provider_offer(golem__runtime__capabilities=_DROP))


async def test_golem_core_subnet_is_a_constraint() -> None:
    text, _ = await _golem_core_demand(subnet="devnet-beta")
    demand = compile_constraints(text)
    assert not demand.matches(_provider_offer())
    assert demand.matches(_provider_offer(golem__node__debug__subnet="devnet-beta"))


async def test_golem_core_parses_our_canonical_rendering() -> None:
    """Round trip through golem-core's own parser: our repr is valid golem syntax."""
    from golem.payload.parser import PayloadSyntaxParser

    text, _ = await _golem_core_demand(capabilities=["vpn"])
    canonical = cmod._render(compile_constraints(text).tree)
    reparsed = PayloadSyntaxParser.get_instance().parse_constraints(canonical)
    assert compile_constraints(reparsed.serialize()) == compile_constraints(text)


# --------------------------------------------------------------------------------------
# Speed: the devnet evaluates every demand against every offer


def test_evaluation_speed_200_offers() -> None:
    demand = compile_constraints(
        "(&(golem.node.debug.subnet=public)\n"
        f"\t({ADDRESS_KEY}=*)\n"
        "\t(golem.runtime.name=vm)\n"
        "\t(&(golem.runtime.capabilities=vpn)\n\t(golem.runtime.capabilities=inet))\n"
        "\t(golem.inf.mem.gib>=0.5)\n"
        "\t(golem.inf.storage.gib>=2.0)\n"
        "\t(golem.inf.cpu.threads>=1)\n"
        "\t(|(golem.com.pricing.model=linear)(golem.com.pricing.model=fixed*))\n"
        "\t(!(golem.node.id.name=blacklisted*)))"
    )
    offers = [
        _provider_offer(golem__inf__mem__gib=float(i % 16) / 2, golem__node__id__name=f"p{i}")
        for i in range(200)
    ]
    expected = sum(1 for o in offers if o["golem.inf.mem.gib"] >= 0.5)
    assert sum(demand.matches(o) for o in offers) == expected
    best = float("inf")
    for _ in range(20):
        start = time.perf_counter()
        for offer in offers:
            demand.matches(offer)
        best = min(best, time.perf_counter() - start)
    # Typically ~0.5 ms for all 200; the bound only guards against accidental re-parsing.
    assert best < 0.05, f"200 evaluations took {best * 1e3:.2f} ms"
