"""Provider profiles: how many providers of which kind, at what price, with which faults.

A profile is a JSON or TOML file with a list of groups (``[[group]]`` in TOML,
``"groups": [...]`` in JSON). Every key is optional except that unknown keys are refused,
so a typo never silently turns a fault off::

    [[group]]
    name = "flaky"
    count = 5
    subnet = "public"
    cpu_threads = 4
    memory_gib = 8.0
    price_cpu_hour = 0.1
    price_duration_hour = 0.02
    price_start = 0.0
    [group.faults]
    reject_proposal = 0.2      # probability per counter-proposal
    die_after_sec = 30         # an activity's exe-unit crashes this long after creation ...
    die_probability = 0.5      # ... with this probability per activity

Without a profile the devnet builds one group of ``providers`` providers whose hardware and
prices vary around realistic values, drawn from the seed.
"""

from __future__ import annotations

import json
import math
import random
import re
import sys
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from golem_tasks.errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on 3.10
    import tomli as tomllib


class ProfileError(UserError):
    """A profile file that cannot be used; the message says which key and why."""


#: What a subnet name may contain: it is written verbatim into the providers' constraints.
SUBNET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: What a provider (group) name may contain: it is shown in logs and offers and may name
#: files, so no path separators, no '..', no control characters.
PROVIDER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: Providers one devnet simulates at most: each is a Python object with offers, timers and
#: possibly processes, and a profile far above this would only hang while it is built.
MAX_PROVIDERS = 10_000


@dataclass(frozen=True)
class Faults:
    """What goes wrong with a provider, as probabilities, delays and factors."""

    #: Probability that the provider rejects a counter-proposal instead of answering it.
    reject_proposal: float = 0.0
    #: Probability that the provider rejects an agreement it was asked to approve.
    reject_agreement: float = 0.0
    #: Probability that the provider never answers an agreement (it expires at validTo).
    agreement_timeout: float = 0.0
    #: Probability that a ``deploy`` command fails.
    deploy_failure: float = 0.0
    #: Seconds (simulated) after activity creation at which a doomed exe-unit crashes.
    die_after_sec: float | None = None
    #: Probability that an activity is doomed (only with ``die_after_sec``).
    die_probability: float = 1.0
    #: Probability that a ``run`` command fails without running.
    command_failure: float = 0.0
    #: Commands take this many times longer than they really run.
    slowdown: float = 1.0
    #: Extra real seconds added to every API call routed to the provider.
    api_latency_sec: float = 0.0
    #: Fraction of API calls routed to the provider that fail with ``error_status``.
    error_rate: float = 0.0
    #: The HTTP status of injected errors (yagna answers network failures with 500).
    error_status: int = 500
    #: Debit notes and invoices ask this many times what the usage costs at the offered
    #: prices (a dishonest provider, for testing a requestor's budget).
    overcharge: float = 1.0


@dataclass(frozen=True)
class ProviderSpec:
    """One provider's hardware, prices, payment terms and faults."""

    name: str
    subnet: str = "public"
    runtime: str = "vm"
    cpu_threads: int = 4
    memory_gib: float = 8.0
    storage_gib: float = 40.0
    price_cpu_hour: float = 0.1
    price_duration_hour: float = 0.02
    price_start: float = 0.0
    #: The debit-note interval the provider offers, and the shortest it accepts.
    debit_note_interval_sec: int = 120
    min_debit_note_interval_sec: int = 1
    #: The payment timeout the provider offers, and the shortest it accepts.
    payment_timeout_sec: int = 120
    min_payment_timeout_sec: int = 1
    #: Agreements the provider serves at once (a real provider serves one).
    max_agreements: int = 1
    #: Shortest and longest agreement lifetime (``golem.srv.comp.expiration``) accepted;
    #: the longest is ``max_expiration_sec`` only with mid-agreement payments, else 30 min.
    min_expiration_sec: float = 60.0
    max_expiration_sec: float = 10 * 3600.0
    #: Real seconds a deploy takes.
    deploy_sec: float = 0.0
    faults: Faults = field(default_factory=Faults)


@dataclass(frozen=True)
class Group:
    """A number of identical providers."""

    count: int
    spec: ProviderSpec
    #: Name members ``<name>-<n>``; off for single providers already named individually.
    numbered: bool = True


@dataclass(frozen=True)
class Profile:
    groups: tuple[Group, ...]

    @property
    def size(self) -> int:
        return sum(group.count for group in self.groups)

    def expand(self) -> list[ProviderSpec]:
        """One spec per provider, named ``<group>-<n>``."""
        specs: list[ProviderSpec] = []
        for group in self.groups:
            for index in range(group.count):
                name = f"{group.spec.name}-{index + 1}" if group.numbered else group.spec.name
                specs.append(replace(group.spec, name=name))
        return specs


_PROBABILITIES = {
    "reject_proposal",
    "reject_agreement",
    "agreement_timeout",
    "deploy_failure",
    "die_probability",
    "command_failure",
    "error_rate",
}


def default_profile(providers: int, seed: int) -> Profile:
    """A varied, healthy network of ``providers`` providers, reproducible from ``seed``."""
    if providers < 0:
        raise ProfileError("the number of providers cannot be negative")
    if providers > MAX_PROVIDERS:
        raise ProfileError(
            f"{providers} providers is too many: a devnet simulates at most {MAX_PROVIDERS}"
        )
    rng = random.Random(f"profile:{seed}")
    groups = []
    for index in range(providers):
        threads = rng.choice((2, 4, 4, 8, 8, 16))
        spec = ProviderSpec(
            name=f"devnet-{index + 1}",
            cpu_threads=threads,
            memory_gib=float(rng.choice((4, 8, 16, 32))),
            storage_gib=float(rng.choice((20, 40, 80))),
            price_cpu_hour=round(rng.uniform(0.02, 0.2), 4),
            price_duration_hour=round(rng.uniform(0.0, 0.05), 4),
            price_start=rng.choice((0.0, 0.0, 0.001)),
        )
        groups.append(Group(count=1, spec=spec, numbered=False))
    return Profile(tuple(groups))


def load_profile(path: str | Path) -> Profile:
    """Read a JSON (``.json``) or TOML (anything else) profile file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ProfileError(f"cannot read profile {str(path)!r}: {exc.strerror or exc}") from None
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(raw)
        else:
            data = tomllib.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProfileError(f"profile {str(path)!r} is not valid: {exc}") from None
    return parse_profile(data, source=str(path))


def parse_profile(data: Any, source: str = "profile") -> Profile:
    """Build a profile from already-parsed JSON/TOML data."""
    if not isinstance(data, dict):
        raise ProfileError(f"{source}: the top level must be a table/object with groups")
    unknown = set(data) - {"group", "groups"}
    if unknown:
        raise ProfileError(f"{source}: unknown top-level key(s): {', '.join(sorted(unknown))}")
    raw_groups = data.get("groups", data.get("group", []))
    if not isinstance(raw_groups, list) or not raw_groups:
        raise ProfileError(f'{source}: needs at least one group ([[group]] or "groups": [...])')
    groups = tuple(
        _parse_group(item, f"{source}: group {index + 1}", index)
        for index, item in enumerate(raw_groups)
    )
    total = sum(group.count for group in groups)
    if total > MAX_PROVIDERS:
        raise ProfileError(
            f"{source}: {total} providers in all is too many: a devnet simulates at most "
            f"{MAX_PROVIDERS}"
        )
    names = [group.spec.name for group in groups]
    duplicates = {name for name in names if names.count(name) > 1}
    if duplicates:
        raise ProfileError(f"{source}: duplicate group name(s): {', '.join(sorted(duplicates))}")
    return Profile(groups)


def _parse_group(item: Any, where: str, index: int) -> Group:
    if not isinstance(item, dict):
        raise ProfileError(f"{where}: must be a table/object")
    item = dict(item)
    count = item.pop("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise ProfileError(f"{where}: count must be a whole number >= 0")
    if count > MAX_PROVIDERS:
        raise ProfileError(f"{where}: count {count} is above the limit of {MAX_PROVIDERS}")
    faults_raw = item.pop("faults", {})
    if not isinstance(faults_raw, dict):
        raise ProfileError(f"{where}: faults must be a table/object")
    item.setdefault("name", f"group{index + 1}")
    spec_values = _typed(ProviderSpec, item, where, skip={"faults"})
    faults = Faults(**_typed(Faults, faults_raw, f"{where} faults"))
    spec = ProviderSpec(**spec_values, faults=faults)
    check_spec(spec, where)
    return Group(count=count, spec=spec)


def _typed(
    cls: type, values: dict[str, Any], where: str, skip: AbstractSet[str] = frozenset()
) -> dict:
    known = {f.name: f for f in fields(cls) if f.name not in skip}
    unknown = set(values) - set(known)
    if unknown:
        raise ProfileError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(known))}"
        )
    defaults = _DEFAULTS[cls]
    return {
        key: _coerce(value, getattr(defaults, key), f"{where}: {key}")
        for key, value in values.items()
    }


_DEFAULTS: dict[type, Any] = {ProviderSpec: ProviderSpec(name="x"), Faults: Faults()}


def _coerce(value: Any, default: Any, where: str) -> Any:
    if isinstance(default, str):
        if not isinstance(value, str) or not value:
            raise ProfileError(f"{where} must be a non-empty string")
        return value
    if isinstance(default, bool):  # pragma: no cover - no boolean settings yet
        if not isinstance(value, bool):
            raise ProfileError(f"{where} must be true or false")
        return value
    if value is None and default is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProfileError(f"{where} must be a number")
    if not math.isfinite(value):
        raise ProfileError(f"{where} must be a finite number, not {value}")
    if isinstance(default, int) and not isinstance(default, bool):
        if float(value) != int(value):
            raise ProfileError(f"{where} must be a whole number")
        return int(value)
    return float(value)


def check_spec(spec: ProviderSpec, where: str) -> None:
    """Refuse values a provider cannot work with (ProfileError saying which and why)."""
    faults = spec.faults
    for holder in (spec, faults):
        for item in fields(holder):
            value = getattr(holder, item.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ProfileError(f"{where}: {item.name} must be a finite number")
    if not isinstance(spec.name, str) or not PROVIDER_NAME.match(spec.name) or ".." in spec.name:
        raise ProfileError(
            f"{where}: name {spec.name!r} may only contain letters, digits, '.', '_' and '-' "
            "(at most 64, starting with a letter or digit, no '..')"
        )
    if not SUBNET.match(spec.subnet):
        raise ProfileError(
            f"{where}: subnet {spec.subnet!r} may only contain letters, digits, '.', '_' and "
            "'-' (at most 64, starting with a letter or digit)"
        )
    for name in _PROBABILITIES:
        value = getattr(faults, name)
        if not 0.0 <= value <= 1.0:
            raise ProfileError(f"{where} faults: {name} must be a probability between 0 and 1")
    if faults.slowdown < 1.0:
        raise ProfileError(f"{where} faults: slowdown must be >= 1")
    if not 1.0 <= faults.overcharge <= 1e6:
        raise ProfileError(f"{where} faults: overcharge must be between 1 and 1000000")
    if faults.api_latency_sec < 0 or (
        faults.die_after_sec is not None and faults.die_after_sec < 0
    ):
        raise ProfileError(f"{where} faults: delays cannot be negative")
    if not 500 <= faults.error_status <= 599:
        raise ProfileError(f"{where} faults: error_status must be a 5xx status")
    if spec.cpu_threads < 1 or spec.memory_gib <= 0 or spec.storage_gib <= 0:
        raise ProfileError(f"{where}: cpu_threads, memory_gib and storage_gib must be positive")
    if min(spec.price_cpu_hour, spec.price_duration_hour, spec.price_start) < 0:
        raise ProfileError(f"{where}: prices cannot be negative")
    if spec.max_agreements < 1:
        raise ProfileError(f"{where}: max_agreements must be at least 1")
    if (
        min(
            spec.debit_note_interval_sec,
            spec.payment_timeout_sec,
            spec.min_debit_note_interval_sec,
            spec.min_payment_timeout_sec,
        )
        < 1
    ):
        raise ProfileError(
            f"{where}: debit_note_interval_sec, payment_timeout_sec and their min_ values "
            "must be >= 1"
        )
    if not 0 <= spec.min_expiration_sec <= spec.max_expiration_sec:
        raise ProfileError(
            f"{where}: min_expiration_sec must be >= 0 and at most max_expiration_sec"
        )
    if spec.deploy_sec < 0:
        raise ProfileError(f"{where}: deploy_sec cannot be negative")
