"""The market: a demand kept alive, offers scored, negotiations that end in agreements.

Offers are scored by linear price (cheaper is better) and refused over the price limits.
Each agreement is written to the database before it is confirmed, so a supervisor that
dies mid-negotiation finds it on restart and settles it with yagna.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from golem.node import GolemNode
from golem.payload import Payload, Properties, defaults
from golem.resources import Demand, DemandBuilder, Proposal
from golem.resources.proposal.exceptions import ProposalRejected

from golem_tasks import budget, images, pricing
from golem_tasks.clock import Clock
from golem_tasks.db.types import Pool
from golem_tasks.pricing import PriceLimits
from golem_tasks.retry import retrying
from golem_tasks.store import agreements
from golem_tasks.store.records import ProposalDecision
from golem_tasks.supervisor.allocations import Allocations

logger = logging.getLogger(__name__)

NEGOTIATION_TIMEOUT_S = 20.0
#: Debit notes must be accepted within this many seconds (providers stop waiting after).
DEBIT_NOTE_ACCEPT_TIMEOUT_S = 240
#: Without offers, a fresh demand is published at most this often to meet providers again.
RESUBSCRIBE_EVERY_S = 120.0
RESUBSCRIBE_AFTER_FAILURE_S = 10.0
MAX_PARALLEL_NEGOTIATIONS = 10
STARVED_WARNING_S = 60.0
PROP_ACCEPT_TIMEOUT = "golem.com.payment.debit-notes.accept-timeout?"
PROP_DEBIT_NOTE_INTERVAL = "golem.com.scheme.payu.debit-note.interval-sec?"
PROP_PAYMENT_TIMEOUT = "golem.com.scheme.payu.payment-timeout-sec?"


@dataclass(frozen=True)
class Terms:
    """What we ask of providers with the current demand."""

    builder: DemandBuilder
    agreements_end: datetime  # golem.srv.comp.expiration


@dataclass
class Offer:
    proposal: Proposal
    provider_id: str
    provider_name: str | None
    price: pricing.LinearPrice
    #: The most its first activity can charge before its first debit note is judged.
    reserve: Decimal = Decimal(0)

    @property
    def score(self) -> Decimal:
        return self.price.score()


class Market:
    def __init__(
        self,
        node: GolemNode,
        pool: Pool,
        *,
        run_id: str,
        payload: Payload,
        subnet: str,
        allocations: Allocations,
        limits: PriceLimits,
        demand_ttl_s: float,
        agreement_lifetime_s: float,
        debit_note_interval_s: int,
        payment_timeout_s: int,
        clock: Clock,
        on_agreement: Callable[[str], Awaitable[None]],
    ) -> None:
        self.node = node
        self.pool = pool
        self.run_id = run_id
        self.payload = payload
        self.subnet = subnet
        self.allocations = allocations
        self.limits = limits
        self.demand_ttl = timedelta(seconds=demand_ttl_s)
        self.agreement_lifetime = timedelta(seconds=agreement_lifetime_s)
        self.debit_note_interval_s = debit_note_interval_s
        self.payment_terms = {
            PROP_DEBIT_NOTE_INTERVAL: debit_note_interval_s,
            PROP_PAYMENT_TIMEOUT: payment_timeout_s,
        }
        self.clock = clock
        self.on_agreement = on_agreement
        self.offers: dict[str, Offer] = {}
        self.negotiating: set[str] = set()
        #: What each negotiation in flight may cost before its first debit note is judged.
        self._reserved: dict[str, Decimal] = {}
        #: The last hire found offers that the budget could not carry, and hired none.
        self.priced_out = False
        self._demand: Demand | None = None
        self._demand_expires: datetime | None = None
        self._terms: Terms | None = None
        self._collector: asyncio.Task[None] | None = None
        self._last_subscribe: datetime | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._starved_since: datetime | None = None
        self._starved_warned = 0
        #: What the last ``hire`` could not fill yet: offers that arrive meanwhile are
        #: hired at once instead of on the supervisor's next tick.
        self._unfilled = 0
        self._busy: set[str] = set()
        self._banned: set[str] = set()
        self._agreed: set[str] = set()
        #: The budget room of the last ``hire`` less what was reserved since (None: no limit).
        self._room_left: Decimal | None = None

    # -- demand -------------------------------------------------------------------------

    async def _build(self, expiration: datetime) -> DemandBuilder:
        await images.resolve_payload(self.payload)
        builder = DemandBuilder()
        await builder.add(defaults.ActivityInfo(expiration=expiration, multi_activity=True))
        await builder.add(defaults.NodeInfo(subnet_tag=self.subnet))
        await builder.add(self.payload)
        allocation = await self.allocations.current()
        await builder.add(await retrying(allocation.get_demand_spec, what="demand decorations"))
        builder.add_properties(
            Properties({PROP_ACCEPT_TIMEOUT: DEBIT_NOTE_ACCEPT_TIMEOUT_S, **self.payment_terms})
        )
        return builder

    async def subscribe(self) -> None:
        """Publish a new demand, then withdraw the previous one."""
        now = self.clock.now()
        expires = now + self.demand_ttl
        agreements_end = now + self.agreement_lifetime
        builder = await self._build(agreements_end)
        demand = await retrying(lambda: builder.create_demand(self.node), what="subscribe demand")
        async with self.pool.connection() as conn:
            await agreements.insert_demand(
                conn,
                id=demand.id,
                run_id=self.run_id,
                properties=builder.properties.serialize(),
                constraints=builder.constraints.serialize(),
                expires_at=expires,
            )
        old = self._demand
        self._demand, self._demand_expires = demand, expires
        self._terms = Terms(builder, agreements_end)
        self._last_subscribe = now
        self.offers.clear()  # offers answer the old demand; the new one brings them again
        if self._collector is not None:
            self._collector.cancel()
        demand.start_collecting_events()
        self._collector = asyncio.create_task(self._collect(demand))
        logger.info("demand %s published (expires %s)", demand.id, expires.isoformat())
        if old is not None:
            await self._unsubscribe(old)

    async def _unsubscribe(self, demand: Demand) -> None:
        with contextlib.suppress(Exception):
            await demand.unsubscribe()
        async with self.pool.connection() as conn:
            await agreements.demand_unsubscribed(conn, demand.id)

    async def close(self) -> None:
        """Withdraw the demand and stop negotiating."""
        self._unfilled = 0
        for task in [*self._tasks, *([self._collector] if self._collector else [])]:
            task.cancel()
        if self._demand is not None:
            await self._unsubscribe(self._demand)
            self._demand = None
        async with self.pool.connection() as conn:
            for demand_id in await agreements.subscribed_demands(conn, self.run_id):
                with contextlib.suppress(Exception):
                    await self.node.demand(demand_id).unsubscribe()
                await agreements.demand_unsubscribed(conn, demand_id)

    async def _collect(self, demand: Demand) -> None:
        async for proposal in demand.initial_proposals():
            try:
                await self._consider(proposal)
            except Exception:
                logger.exception("could not consider proposal %s", proposal.id)

    def _collector_died(self) -> bool:
        """golem-core's offer collector ends silently on a server error (see its docs)."""
        demand = self._demand
        task = getattr(demand, "_event_collecting_task", None) if demand else None
        return task is not None and task.done()

    # -- offers -------------------------------------------------------------------------

    async def _consider(self, proposal: Proposal) -> None:
        data = proposal.data
        properties = dict(data.properties)
        provider_id = data.issuer_id
        if provider_id is None:  # yagna names every offer's issuer
            raise ValueError("an offer without an issuer")
        name = properties.get("golem.node.id.name")
        decision: ProposalDecision | None = None
        reason: str | None = None
        price: pricing.LinearPrice | None = None
        try:
            price = pricing.linear_price(properties)
            reason = self.limits.violation(price)
        except ValueError as exc:
            reason = f"unusable pricing: {exc}"
        if reason is not None:
            decision = ProposalDecision.REJECTED
        await self._record_proposal(proposal, "provider", None, price, decision, reason)
        if price is None or reason is not None:
            logger.debug("offer from %s refused: %s", name or provider_id, reason)
            return
        # The interval we ask for (the provider may only raise it to its own minimum).
        terms = budget.Terms.from_properties(
            {**properties, budget.DEBIT_NOTE_INTERVAL: self.debit_note_interval_s},
            self.debit_note_interval_s,
        )
        self.offers[provider_id] = Offer(proposal, provider_id, name, price, terms.new_activity())
        self._hire_unfilled()

    async def _record_proposal(
        self,
        proposal: Proposal,
        issuer: str,
        parent_id: str | None,
        price: pricing.LinearPrice | None,
        decision: ProposalDecision | None,
        reason: str | None,
    ) -> None:
        data = proposal.data
        async with self.pool.connection() as conn:
            await agreements.insert_proposal(
                conn,
                id=proposal.id,
                run_id=self.run_id,
                demand_id=proposal.demand.id,
                parent_id=parent_id,
                issuer=issuer,
                provider_id=data.issuer_id if issuer == "provider" else "",
                provider_name=dict(data.properties).get("golem.node.id.name"),
                properties=dict(data.properties),
                constraints=data.constraints,
                price_start=price.start if price else None,
                price_cpu_sec=price.cpu_sec if price else None,
                price_env_sec=price.env_sec if price else None,
                score=price.score() if price else None,
                decision=decision,
                decision_reason=reason,
            )

    async def _decide(
        self, proposal_id: str, decision: ProposalDecision, reason: str | None
    ) -> None:
        async with self.pool.connection() as conn:
            await agreements.decide_proposal(conn, proposal_id, decision, reason)

    # -- agreements ---------------------------------------------------------------------

    def _demand_due(self, now: datetime) -> bool:
        """No demand, its offer collector died, or it is about to expire."""
        if self._demand is None or self._demand_expires is None:
            return True
        if self._collector_died():
            # Republish, but not in a loop if the daemon keeps failing.
            last = self._last_subscribe
            return last is None or (now - last).total_seconds() >= RESUBSCRIBE_AFTER_FAILURE_S
        return now >= self._demand_expires - self.demand_ttl / 10

    @property
    def reserved(self) -> Decimal:
        """What the negotiations in flight may cost before their first debit note."""
        return sum(self._reserved.values(), Decimal(0))

    async def hire(
        self, count: int, busy: set[str], banned: set[str], room: Decimal | None = None
    ) -> int:
        """Start up to ``count`` negotiations with the cheapest offers; return how many.

        Also keeps the demand alive: renewed before it expires, republished when golem-core
        stopped collecting its offers. ``busy`` providers already work for this run;
        ``banned`` ones are not hired again. With ``room``, only offers whose first
        activity can charge no more than it (together) are taken (the prospective budget);
        ``priced_out`` then says whether the budget kept every usable offer out.
        """
        now = self.clock.now()
        self.priced_out = False
        if self._demand_due(now):
            await self.subscribe()
        for provider_id in banned & self.offers.keys():
            del self.offers[provider_id]
        if count <= 0:
            self._starved_since = None
            self._unfilled = 0
            return 0
        self._busy, self._banned, self._room_left = busy, banned, room
        usable = self._usable()
        slots = min(count, MAX_PARALLEL_NEGOTIATIONS - len(self.negotiating))
        started = self._start_negotiations(count)
        self._unfilled = count - started
        if usable and not started and slots > 0:
            self.priced_out = True
            logger.debug(
                "budget: %d offers, none fits the %s left", len(usable), room and room.normalize()
            )
            return 0
        if usable:
            self._starved_since = None
            return started
        # Nobody to hire: meet providers whose offers we used up, and say so when it lasts.
        self._starved_since = self._starved_since or now
        waited = (now - self._starved_since).total_seconds()
        if (
            self._last_subscribe
            and (now - self._last_subscribe).total_seconds() > RESUBSCRIBE_EVERY_S
        ):
            await self.subscribe()
        if waited >= STARVED_WARNING_S and waited // STARVED_WARNING_S != self._starved_warned:
            self._starved_warned = int(waited // STARVED_WARNING_S)
            logger.warning(
                "no provider to hire for %ds: %d offers waiting, %d providers banned in this run "
                "(see refused offers in tasks.proposal)",
                waited,
                len(self.offers),
                len(banned),
            )
        return 0

    def hold(self) -> None:
        """Hire nothing more until the next ``hire``: the run stops, or its supervisor lost
        its lock (the budget and the run may no longer be its to act on)."""
        self._unfilled = 0
        self._room_left = Decimal(0)

    def take_agreed(self) -> set[str]:
        """Providers agreed with since the last call (the supervisor's view of live
        agreements may predate them)."""
        agreed, self._agreed = self._agreed, set()
        return agreed

    def _usable(self) -> list[Offer]:
        """Offers of providers that neither work for this run nor are banned from it."""
        return [
            offer
            for pid, offer in self.offers.items()
            if pid not in self._busy and pid not in self.negotiating and pid not in self._banned
        ]

    def _hire_unfilled(self) -> None:
        """Hire what the last ``hire`` could not, as soon as an offer or a slot is free."""
        if self._unfilled > 0:
            self._unfilled -= self._start_negotiations(self._unfilled)

    def _start_negotiations(self, count: int) -> int:
        """Negotiate with up to ``count`` of the cheapest usable offers whose first
        activity fits what is left of the budget room; return how many."""
        slots = min(count, MAX_PARALLEL_NEGOTIATIONS - len(self.negotiating))
        chosen: list[Offer] = []
        left = self._room_left
        for offer in sorted(self._usable(), key=lambda offer: offer.score):
            if len(chosen) >= slots:
                break
            if left is not None:
                if offer.reserve > left:
                    continue
                left -= offer.reserve
            chosen.append(offer)
        self._room_left = left
        for offer in chosen:
            del self.offers[offer.provider_id]
            self.negotiating.add(offer.provider_id)
            self._reserved[offer.provider_id] = offer.reserve
            task = asyncio.create_task(self._negotiate(offer))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(chosen)

    async def _negotiate(self, offer: Offer) -> None:
        name = offer.provider_name or offer.provider_id
        terms = self._terms
        assert terms is not None
        try:
            ours = await offer.proposal.respond(terms.builder.properties, terms.builder.constraints)
            await self._decide(offer.proposal.id, ProposalDecision.COUNTERED, None)
            theirs = await asyncio.wait_for(_first_response(ours), NEGOTIATION_TIMEOUT_S)
            await self._record_proposal(
                theirs, "provider", offer.proposal.id, offer.price, None, None
            )
            agreement = await theirs.create_agreement(autoclose=False)
            async with self.pool.connection() as conn:
                await agreements.insert(
                    conn,
                    id=agreement.id,
                    run_id=self.run_id,
                    proposal_id=theirs.id,
                    provider_id=offer.provider_id,
                    provider_name=offer.provider_name,
                    expires_at=terms.agreements_end,
                )
            await agreement.confirm()
            approved = await agreement.wait_for_approval()
            async with self.pool.connection() as conn:
                if not approved:
                    await agreements.reject(conn, agreement.id, "provider rejected")
                    await self._decide(
                        theirs.id, ProposalDecision.REJECTED, "agreement rejected by provider"
                    )
                    logger.info("%s rejected the agreement", name)
                    return
                await agreements.approve(conn, agreement.id)
            await self._decide(theirs.id, ProposalDecision.AGREED, None)
            self._agreed.add(offer.provider_id)
            logger.info("agreement %s with %s (score %s)", agreement.id, name, offer.score)
            await self.on_agreement(agreement.id)
        except ProposalRejected as exc:
            await self._decide(offer.proposal.id, ProposalDecision.REJECTED, f"provider: {exc}")
            logger.info("%s rejected our proposal", name)
        except asyncio.TimeoutError:
            await self._decide(
                offer.proposal.id, ProposalDecision.EXPIRED, "no answer from the provider"
            )
            logger.info("%s did not answer in %ss", name, NEGOTIATION_TIMEOUT_S)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("negotiation with %s failed: %s", name, exc)
        finally:
            self.negotiating.discard(offer.provider_id)
            self._reserved.pop(offer.provider_id, None)
            self._busy.add(offer.provider_id)  # until the next tick says otherwise
            self._hire_unfilled()


async def _first_response(proposal: Proposal) -> Proposal:
    async for response in proposal.responses():
        return response
    raise ProposalRejected(proposal.id, "negotiation ended without an answer")
