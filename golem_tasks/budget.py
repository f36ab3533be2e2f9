"""The prospective budget: activities run only while what they can still charge fits.

A provider charges by its negotiated linear prices (a start price per activity, a price
per second of duration and per cpu-second, at most ``threads`` cpu-seconds a second) and
sends a debit note every negotiated interval. So whatever any activity may charge next is
bounded: from the end of its last accepted note (or its start) up to its next note, plus
the time it takes us to stop it. The supervisor hires and keeps activities only while the
spend accepted within the hour plus these bounds fits the hourly budget. Then every
document for work that was ordered fits and is accepted; one that does not fit charged
more than its prices allow, and is rejected.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from golem_tasks import pricing
from golem_tasks.db.types import Connection
from golem_tasks.store import ledger
from golem_tasks.store.records import AgreementStatus

logger = logging.getLogger(__name__)

#: Seconds from a decision to stop an activity until its provider stops charging: one
#: supervisor tick, a worker heartbeat, the destroy call, and the wait before the
#: supervisor destroys an activity itself (see the supervisor's budget stop).
STOP_MARGIN_S = 15
#: How long before we record an activity its provider may have started counting.
CREATION_SLACK_S = 2
THREADS = "golem.inf.cpu.threads"
DEBIT_NOTE_INTERVAL = "golem.com.scheme.payu.debit-note.interval-sec?"
#: Ended agreements stop counting this long after their end, invoice or not.
INVOICE_WAIT = timedelta(hours=1)


@dataclass(frozen=True)
class Terms:
    """What one provider may charge: its prices, threads and debit-note interval."""

    price: pricing.LinearPrice
    threads: int
    interval_s: float

    @classmethod
    def from_properties(cls, properties: Mapping[str, Any], default_interval_s: float) -> Terms:
        """The terms of an offer or agreement; ``ValueError`` when its pricing is unusable."""
        price = pricing.linear_price(properties)
        threads = _positive(pricing.property_value(properties, THREADS))
        interval = _positive(pricing.property_value(properties, DEBIT_NOTE_INTERVAL))
        return cls(
            price=price,
            threads=int(threads) if threads else 1,
            interval_s=interval or default_interval_s,
        )

    @property
    def per_second(self) -> Decimal:
        """The most one activity can charge in a second (every thread busy)."""
        return self.price.env_sec + self.price.cpu_sec * self.threads

    @property
    def ahead(self) -> timedelta:
        """How far ahead an activity's charges are kept: its next note, and our stop."""
        return timedelta(seconds=self.interval_s + STOP_MARGIN_S)

    def new_activity(self) -> Decimal:
        """The most a new activity can charge before its first debit note can be judged."""
        return self.price.start + self.per_second * Decimal(self.ahead.total_seconds())

    def charge(self, seconds: float) -> Decimal:
        return self.per_second * Decimal(max(0.0, seconds))


def _positive(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        return None
    return float(value)


@dataclass(frozen=True)
class Exposure:
    """What the run's activities may still charge beyond the spend accepted so far."""

    total: Decimal = Decimal(0)
    #: Agreement id -> its part of ``total``.
    agreements: dict[str, Decimal] = field(default_factory=dict)
    #: Activities still running (new, deploying or ready).
    running: int = 0


async def exposure(
    conn: Connection, run_id: str, now: datetime, *, default_interval_s: float
) -> Exposure:
    """What every activity of the run may still charge, by its agreement's terms."""
    agreements = await ledger.charging_agreements(conn, run_id, since=now - INVOICE_WAIT)
    if not agreements:
        return Exposure()
    activities = await ledger.charging_activities(conn, [each.id for each in agreements])
    by_agreement: dict[str, list[ledger.ChargingActivity]] = {}
    for act in activities:
        by_agreement.setdefault(act.agreement_id, []).append(act)
    parts: dict[str, Decimal] = {}
    running = 0
    for agreement in agreements:
        try:
            terms = Terms.from_properties(agreement.properties, default_interval_s)
        except ValueError as exc:  # we hire only linear offers: not expected
            logger.warning("agreement %s: terms unknown (%s); nothing kept", agreement.id, exc)
            continue
        part = Decimal(0)
        acts = by_agreement.get(agreement.id, [])
        live = [a for a in acts if not a.status.ended]
        running += len(live)
        for act in acts:
            part += _activity_exposure(act, terms, now)
        if agreement.status is not AgreementStatus.TERMINATED and not live:
            part += terms.new_activity()  # its driver may start an activity at any moment
        parts[agreement.id] = part
    return Exposure(sum(parts.values(), Decimal(0)), parts, running)


def _activity_exposure(act: ledger.ChargingActivity, terms: Terms, now: datetime) -> Decimal:
    """From the end of its last accepted note (or its start) to its next note or its end."""
    margin = timedelta(seconds=STOP_MARGIN_S)
    until = (act.stopped_at or now) + margin if act.status.ended else now + terms.ahead
    if act.note_total is None or act.note_at is None:
        # Its provider starts counting when it creates the activity, just before we record it.
        since = act.created_at - timedelta(seconds=CREATION_SLACK_S)
        return terms.price.start + terms.charge((until - since).total_seconds())
    return terms.charge((until - act.note_at).total_seconds())


@dataclass(frozen=True)
class Standing:
    """The budget at one moment: accepted spend, what activities may add, the budget."""

    spent: Decimal
    exposure: Exposure
    budget: Decimal

    @property
    def committed(self) -> Decimal:
        return self.spent + self.exposure.total

    @property
    def room(self) -> Decimal:
        """What new activities may still be given."""
        return self.budget - self.committed

    @property
    def fits(self) -> bool:
        return self.committed <= self.budget

    def reason(self) -> str:
        return (
            f"budget reached: {self.spent.normalize():f} accepted in the last hour plus up to "
            f"{self.exposure.total.normalize():f} that {self.exposure.running} running "
            f"activities may charge before their next debit note would pass the hourly "
            f"budget of {self.budget.normalize():f}"
        )


async def standing(
    conn: Connection,
    run_id: str,
    now: datetime,
    budget: Decimal,
    *,
    default_interval_s: float,
) -> Standing:
    # Under the lock decisions take: a document accepted between the two reads would be
    # missing from the spend yet already shorten its activity's exposure (room not there).
    async with conn.transaction():
        await ledger.spend_lock(conn, run_id)
        spent = await ledger.spent_last_hour(conn, run_id, now)
        found = await exposure(conn, run_id, now, default_interval_s=default_interval_s)
    return Standing(spent, found, budget)
