"""Simulated providers: what they offer, what they charge, how they negotiate, when they fail.

The same seed builds the same network (ids, names, hardware, prices) and makes the same
fault decisions: the n-th decision of one kind by one provider (its 3rd counter-proposal
answer, its 5th ``exec`` call, ...) is drawn from a generator of its own, seeded with the
devnet seed, the provider, the kind and n. Decisions of one kind therefore do not depend on
how many of another kind came before (extra polls do not change which command fails).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from golem_tasks.devnet.constraints import Constraint, compile_constraints
from golem_tasks.devnet.platform import PaymentPlatform
from golem_tasks.devnet.profile import ProviderSpec, check_spec

DEBIT_NOTE_INTERVAL = "golem.com.scheme.payu.debit-note.interval-sec?"
PAYMENT_TIMEOUT = "golem.com.scheme.payu.payment-timeout-sec?"
ACCEPT_TIMEOUT = "golem.com.payment.debit-notes.accept-timeout?"
EXPIRATION = "golem.srv.comp.expiration"
USAGE_VECTOR = ("golem.usage.cpu_sec", "golem.usage.duration_sec")
#: Without mid-agreement payments a provider works at most this long per agreement.
MAX_EXPIRATION_WITHOUT_PAYMENTS = 30 * 60.0
#: Tolerance for the requestor's clock and the time a proposal spends in transit.
EXPIRATION_GRACE = 60.0
#: Longest payment or acceptance timeout a provider agrees to (longer asks are lowered).
MAX_PAYMENT_TERM = 7 * 24 * 3600


@dataclass(frozen=True)
class Rejection:
    """A provider's refusal, with the reason it sends."""

    message: str


class Provider:
    """One simulated provider node."""

    def __init__(self, spec: ProviderSpec, index: int, seed: int, platform: PaymentPlatform):
        self.spec = spec
        self.index = index
        identity = random.Random(f"provider-id:{seed}:{index}")
        self.node_id = f"0x{identity.getrandbits(160):040x}"
        self.name = spec.name
        self.faults = spec.faults
        self._seed = seed
        self._decisions: dict[str, int] = {}
        self.platform = platform
        self.active_agreements: set[str] = set()
        self.coeffs = (
            Decimal(str(spec.price_cpu_hour)) / 3600,
            Decimal(str(spec.price_duration_hour)) / 3600,
            Decimal(str(spec.price_start)),
        )
        self.properties: dict[str, Any] = self._offer_properties()
        self.constraints_text = f"(&(golem.node.debug.subnet={spec.subnet})\n\t({EXPIRATION}>0))"
        self.constraints: Constraint = compile_constraints(self.constraints_text)

    def __repr__(self) -> str:
        return f"Provider({self.name}, {self.node_id})"

    # ------------------------------------------------------------------ offer and pricing
    def _offer_properties(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "golem.activity.caps.transfer.protocol": ["http", "https", "file"],
            ACCEPT_TIMEOUT: 240,
            f"golem.com.payment.platform.{self.platform.name}.address": self.node_id,
            "golem.com.payment.protocol.version": 3,
            "golem.com.pricing.model": "linear",
            "golem.com.pricing.model.linear.coeffs": [float(c) for c in self.coeffs],
            "golem.com.scheme": "payu",
            DEBIT_NOTE_INTERVAL: spec.debit_note_interval_sec,
            PAYMENT_TIMEOUT: spec.payment_timeout_sec,
            "golem.com.usage.vector": list(USAGE_VECTOR),
            "golem.inf.cpu.architecture": "x86_64",
            "golem.inf.cpu.cores": max(1, spec.cpu_threads // 2),
            "golem.inf.cpu.threads": spec.cpu_threads,
            "golem.inf.mem.gib": spec.memory_gib,
            "golem.inf.storage.gib": spec.storage_gib,
            "golem.node.debug.subnet": spec.subnet,
            "golem.node.id.name": spec.name,
            "golem.node.net.is-public": False,
            "golem.runtime.capabilities": ["inet", "vpn", "manifest-support", "start-entrypoint"],
            "golem.runtime.name": spec.runtime,
            "golem.runtime.version": "0.4.0",
            "golem.srv.caps.multi-activity": True,
            "golem.srv.caps.payload-manifest": True,
        }

    def cost(self, usage: Sequence[float]) -> Decimal:
        """Linear pricing: start price plus price times counter for every usage counter
        (times the ``overcharge`` fault)."""
        cpu, duration = (Decimal(float(value)) for value in usage)
        honest = self.coeffs[2] + self.coeffs[0] * cpu + self.coeffs[1] * duration
        if self.faults.overcharge != 1.0:
            return honest * Decimal(str(self.faults.overcharge))
        return honest

    @property
    def busy(self) -> bool:
        return len(self.active_agreements) >= self.spec.max_agreements

    # ------------------------------------------------------------------ decisions
    def chance(self, kind: str, probability: float) -> bool:
        """The provider's next fault decision of ``kind``: true with ``probability``."""
        ordinal = self._decisions.get(kind, 0)
        self._decisions[kind] = ordinal + 1
        if probability <= 0.0:
            return False
        if probability >= 1.0:
            return True
        draw = random.Random(f"provider-fault:{self._seed}:{self.index}:{kind}:{ordinal}")
        return draw.random() < probability

    def answer_proposal(self, demand: Mapping[str, Any], now: datetime) -> dict | Rejection:
        """The provider's counter-offer properties for a requestor's proposal, or a refusal.

        Payment terms are echoed when acceptable, raised to the provider's minimum
        otherwise, and dropped when the requestor does not ask for them (then there are
        no mid-agreement payments).
        """
        if self.chance("reject_proposal", self.faults.reject_proposal):
            return Rejection("Provider declined the proposal (devnet fault: reject_proposal)")
        if self.busy:
            return Rejection("Provider is busy with another agreement")
        expiration = demand.get(EXPIRATION)
        if (
            isinstance(expiration, bool)
            or not isinstance(expiration, (int, float))
            or not math.isfinite(expiration)
        ):
            return Rejection(f"Proposal has no valid '{EXPIRATION}' property")
        seconds_left = expiration / 1000.0 - now.timestamp()
        if seconds_left < self.spec.min_expiration_sec:
            return Rejection(
                f"Agreement expiration too soon: {seconds_left:.0f}s left, "
                f"at least {self.spec.min_expiration_sec:.0f}s required"
            )
        properties = dict(self.properties)
        # No debit-note interval longer than the longest agreement the provider serves.
        longest_interval = int(self.spec.max_expiration_sec)
        interval = _positive_int(demand.get(DEBIT_NOTE_INTERVAL))
        timeout = _positive_int(demand.get(PAYMENT_TIMEOUT))
        if interval is None:
            properties.pop(DEBIT_NOTE_INTERVAL)
        else:
            properties[DEBIT_NOTE_INTERVAL] = _within(
                interval, self.spec.min_debit_note_interval_sec, longest_interval
            )
        if timeout is None or interval is None:
            properties.pop(PAYMENT_TIMEOUT)
        else:
            properties[PAYMENT_TIMEOUT] = _within(
                timeout, self.spec.min_payment_timeout_sec, MAX_PAYMENT_TERM
            )
        accept_timeout = _positive_int(demand.get(ACCEPT_TIMEOUT))
        if accept_timeout is None:
            properties.pop(ACCEPT_TIMEOUT)
        else:
            properties[ACCEPT_TIMEOUT] = _within(accept_timeout, 1, MAX_PAYMENT_TERM)
        longest = (
            self.spec.max_expiration_sec
            if PAYMENT_TIMEOUT in properties
            else MAX_EXPIRATION_WITHOUT_PAYMENTS
        )
        if seconds_left > longest + EXPIRATION_GRACE:
            return Rejection(
                f"Agreement expiration too far: {seconds_left:.0f}s, at most {longest:.0f}s "
                + (
                    "accepted"
                    if PAYMENT_TIMEOUT in properties
                    else "without mid-agreement payments"
                )
            )
        return properties

    def answer_agreement(self) -> Rejection | None:
        """None to approve; a rejection otherwise. Timeouts are decided separately."""
        if self.chance("reject_agreement", self.faults.reject_agreement):
            return Rejection("Provider rejected the agreement (devnet fault: reject_agreement)")
        if self.busy:
            return Rejection("Provider is busy with another agreement")
        return None


def _positive_int(value: Any) -> int | None:
    """A positive number of seconds as an int; None for anything else (also inf, nan)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not math.isfinite(value) or value <= 0:
        return None
    return int(value)


def _within(value: int, low: int, high: int) -> int:
    return max(low, min(value, max(low, high)))


def build_providers(
    specs: Sequence[ProviderSpec], seed: int, platform: PaymentPlatform
) -> list[Provider]:
    """The providers of ``specs``; a spec that makes no sense is a ProfileError."""
    for spec in specs:
        check_spec(spec, f"provider {spec.name!r}")
    return [Provider(spec, index, seed, platform) for index, spec in enumerate(specs)]
