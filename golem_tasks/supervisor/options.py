"""Everything that shapes one run, as the CLI and the Python API give it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from golem_tasks.config import Budget
from golem_tasks.pricing import PriceLimits


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass(frozen=True)
class RunOptions:
    app: str
    workers: int = 1
    run_id: str | None = None
    budget: Budget = field(default_factory=lambda: Budget(Decimal(1)))
    #: Cost manager: stop activities whose average cost per result is above this.
    max_price: Decimal | None = None
    price_limits: PriceLimits = field(default_factory=PriceLimits)
    subnet: str | None = None
    payment_network: str | None = None
    payment_driver: str | None = None
    #: Seconds an activity works before the cost manager judges it.
    warmup_s: float = 300.0
    #: Pending tasks kept in the database ahead of demand (default: 10 per worker, >= 100).
    feed_window: int | None = None
    #: Lifetime of a market demand; it is renewed before it expires.
    demand_ttl_s: float = 1800.0
    #: How long agreements made from a demand may last (``golem.srv.comp.expiration``).
    agreement_lifetime_s: float = 8 * 3600.0
    #: Mid-agreement payments: a debit note every this many seconds, each payable within
    #: the payment timeout. Providers accept agreements over 30 minutes only with these.
    debit_note_interval_s: int = 120
    payment_timeout_s: int = 1800
    #: How long the end of a run waits for workers to stop and for invoices.
    stop_wait_s: float = 60.0
    invoice_wait_s: float = 60.0
    #: Tasks only this process can run (callables): jobs go to a run-local queue.
    local_only: bool = False
    #: Wait while another supervisor holds the (existing) run, then take it over.
    standby: bool = False

    def window(self) -> int:
        return self.feed_window or max(100, 10 * self.workers)

    def settings_json(self) -> dict[str, Any]:
        """What is stored in tasks.run.settings (for monitoring and for resuming)."""
        return {
            "price_limits": self.price_limits.as_json(),
            "warmup_s": self.warmup_s,
            "feed_window": self.window(),
            "demand_ttl_s": self.demand_ttl_s,
            "agreement_lifetime_s": self.agreement_lifetime_s,
            "debit_note_interval_s": self.debit_note_interval_s,
            "payment_timeout_s": self.payment_timeout_s,
        }
