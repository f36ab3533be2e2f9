"""The market: demands, proposals, negotiation with providers, agreements.

States and refusals follow yagna's market service: a demand produces one initial proposal
per matching provider; the requestor counters, the provider answers with a draft (or
rejects); an agreement is made from a provider's draft, confirmed, and approved or rejected
by the provider; it ends by termination, cancellation or expiry.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from golem_tasks.devnet.clock import Clock, Timers, isoformat
from golem_tasks.devnet.constraints import (
    Constraint,
    ConstraintSyntaxError,
    compile_constraints,
    flatten_properties,
)
from golem_tasks.devnet.errors import BadRequest, Conflict, Gone, NotFound, RequestTimeout
from golem_tasks.devnet.events import EventLog, EventQueue, Signal, wait_until
from golem_tasks.devnet.providers import EXPIRATION, Provider, Rejection

logger = logging.getLogger(__name__)

#: yagna keeps a subscription this long (simulated seconds) unless unsubscribed.
DEMAND_TTL = 3600.0
ENDED_AGREEMENT_STATES = frozenset({"Cancelled", "Rejected", "Expired", "Terminated"})
SETTLED_PROPOSAL_STATES = frozenset({"Rejected", "Accepted", "Expired"})


def _market_object(
    properties: dict[str, Any],
    constraints: str,
    id_key: str,
    object_id: str,
    owner_key: str,
    owner_id: str,
    timestamp: datetime,
) -> dict[str, Any]:
    """A Demand or an Offer as the market API writes them."""
    return {
        "properties": properties,
        "constraints": constraints,
        id_key: object_id,
        owner_key: owner_id,
        "timestamp": isoformat(timestamp),
    }


@dataclass(eq=False)
class Demand:
    id: str
    properties: dict[str, Any]
    flat: dict[str, Any]
    constraints_text: str
    constraints: Constraint
    requestor_id: str
    timestamp: datetime
    expires_at: float  # loop time
    queue: EventQueue = field(default_factory=EventQueue)
    state: str = "Active"  # Active, Unsubscribed, Expired
    ended: datetime | None = None
    offered: set[str] = field(default_factory=set)  # providers with a live initial proposal
    timer: asyncio.Handle | None = None

    def to_json(self) -> dict[str, Any]:
        return _market_object(
            self.properties,
            self.constraints_text,
            "demandId",
            self.id,
            "requestorId",
            self.requestor_id,
            self.timestamp,
        )


@dataclass(eq=False)
class Proposal:
    id: str
    demand: Demand
    provider: Provider
    from_provider: bool
    properties: dict[str, Any]
    constraints_text: str
    timestamp: datetime
    prev_id: str | None = None
    state: str = "Initial"  # Initial, Draft, Rejected, Accepted, Expired
    countered: bool = False

    @property
    def issuer_id(self) -> str:
        return self.provider.node_id if self.from_provider else self.demand.requestor_id

    def to_json(self) -> dict[str, Any]:
        body = {
            "properties": self.properties,
            "constraints": self.constraints_text,
            "proposalId": self.id,
            "issuerId": self.issuer_id,
            "state": self.state,
            "timestamp": isoformat(self.timestamp),
        }
        if self.prev_id is not None:
            body["prevProposalId"] = self.prev_id
        return body


@dataclass(eq=False)
class Agreement:
    id: str
    demand_proposal: Proposal
    offer_proposal: Proposal
    provider: Provider
    valid_to: datetime
    timestamp: datetime
    state: str = "Proposal"  # Proposal, Pending, Cancelled, Rejected, Approved, Expired, Terminated
    approved_date: datetime | None = None
    app_session_id: str | None = None
    end_reason: dict[str, Any] | None = None
    terminator: str | None = None
    terminated_date: datetime | None = None
    changed: Signal = field(default_factory=Signal)
    timer: asyncio.Handle | None = None

    @property
    def demand_properties(self) -> dict[str, Any]:
        return self.demand_proposal.demand.flat | flatten_properties(
            self.demand_proposal.properties
        )

    def to_json(self) -> dict[str, Any]:
        demand, offer = self.demand_proposal, self.offer_proposal
        body: dict[str, Any] = {
            "agreementId": self.id,
            # yagna names the demand subscription here (clients find the agreement's demand
            # by it), with the properties of the proposal that was agreed on.
            "demand": _market_object(
                demand.properties,
                demand.constraints_text,
                "demandId",
                demand.demand.id,
                "requestorId",
                demand.demand.requestor_id,
                demand.timestamp,
            ),
            "offer": _market_object(
                offer.properties,
                offer.constraints_text,
                "offerId",
                offer.id,
                "providerId",
                self.provider.node_id,
                offer.timestamp,
            ),
            "validTo": isoformat(self.valid_to),
            "state": self.state,
            "timestamp": isoformat(self.timestamp),
            "proposedSignature": "NoSignature",
        }
        if self.approved_date is not None:
            body["approvedDate"] = isoformat(self.approved_date)
            body["approvedSignature"] = "NoSignature"
            body["committedSignature"] = "NoSignature"
        if self.app_session_id is not None:
            body["appSessionId"] = self.app_session_id
        return body

    def list_entry(self) -> dict[str, Any]:
        approved = isoformat(self.approved_date) if self.approved_date else None
        entry: dict[str, Any] = {
            "id": self.id,
            "creationTs": isoformat(self.timestamp),
            "approveTs": approved,
            "timestamp": isoformat(self.timestamp),
            "role": "Requestor",
        }
        if approved is not None:
            entry["approvedDate"] = approved
        return entry


@dataclass
class MarketHooks:
    """What the rest of the network does when agreements change."""

    ended: Callable[[Agreement], None] = lambda agreement: None


def _demand_id() -> str:
    return f"{uuid.uuid4().hex}-{secrets.token_hex(32)}"


def _proposal_id(from_provider: bool) -> str:
    return f"{'P' if from_provider else 'R'}-{secrets.token_hex(32)}"


class Market:
    """All market state of one devnet."""

    def __init__(self, clock: Clock, providers: list[Provider], requestor_id: str) -> None:
        self.clock = clock
        self.providers = providers
        self.requestor_id = requestor_id
        self.hooks = MarketHooks()
        self.demands: dict[str, Demand] = {}
        self.proposals: dict[str, Proposal] = {}
        self.agreements: dict[str, Agreement] = {}
        self.agreement_events = EventLog()
        self._timers = Timers()

    def close(self) -> None:
        """Cancel every pending expiry and provider answer."""
        self._timers.cancel_all()

    @staticmethod
    def _loop() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    # ------------------------------------------------------------------ demands
    def subscribe(self, properties: Mapping[str, Any], constraints: str) -> Demand:
        try:
            compiled = compile_constraints(constraints)
            flat = flatten_properties(properties)
        except ConstraintSyntaxError as exc:
            raise BadRequest(f"Invalid constraint. {exc}") from None
        loop = self._loop()
        demand = Demand(
            id=_demand_id(),
            properties=dict(properties),
            flat=flat,
            constraints_text=constraints,
            constraints=compiled,
            requestor_id=self.requestor_id,
            timestamp=self.clock.now(),
            expires_at=loop.time() + self.clock.real_seconds(DEMAND_TTL),
        )
        self.demands[demand.id] = demand
        demand.timer = self._timers.call_at(demand.expires_at, self._expire_demand, demand)
        for provider in self.providers:
            self._offer(demand, provider)
        logger.debug("demand %s subscribed, %d offers", demand.id, len(demand.queue))
        return demand

    def _matches(self, demand: Demand, provider: Provider) -> bool:
        return demand.constraints.matches(provider.properties) and provider.constraints.matches(
            demand.flat
        )

    def _offer(self, demand: Demand, provider: Provider) -> None:
        """Send the provider's offer to the demand as an initial proposal, if they match."""
        if demand.state != "Active" or provider.busy or provider.node_id in demand.offered:
            return
        if not self._matches(demand, provider):
            return
        proposal = Proposal(
            id=_proposal_id(True),
            demand=demand,
            provider=provider,
            from_provider=True,
            properties=dict(provider.properties),
            constraints_text=provider.constraints_text,
            timestamp=self.clock.now(),
        )
        self.proposals[proposal.id] = proposal
        demand.offered.add(provider.node_id)
        demand.queue.put(self._proposal_event(proposal))

    def offer_again(self, provider: Provider) -> None:
        """A provider that became free re-publishes its offer to every live demand."""
        for demand in self.active_demands():
            demand.offered.discard(provider.node_id)
            self._offer(demand, provider)

    def _proposal_event(self, proposal: Proposal) -> dict[str, Any]:
        return {
            "eventType": "ProposalEvent",
            "eventDate": isoformat(self.clock.event_time()),
            "proposal": proposal.to_json(),
        }

    def _expire_demand(self, demand: Demand) -> None:
        if demand.state == "Active":
            demand.state = "Expired"
            demand.ended = self.clock.now()
            demand.queue.signal.fire()
            logger.debug("demand %s expired", demand.id)

    def active_demands(self) -> list[Demand]:
        return [d for d in self.demands.values() if d.state == "Active"]

    def demand(self, demand_id: str, *, for_events: bool = False) -> Demand:
        demand = self.demands.get(demand_id)
        if demand is None:
            raise NotFound(f"Subscription [{demand_id}] wasn't found.")
        if demand.state == "Unsubscribed":
            if for_events:
                raise NotFound(f"Subscription [{demand_id}] was already unsubscribed.")
            raise BadRequest(f"Subscription [{demand_id}] was already unsubscribed.")
        if demand.state == "Expired":
            if for_events:
                raise NotFound(f"Subscription [{demand_id}] expired.")
            raise Gone(f"Subscription [{demand_id}] expired.")
        return demand

    def unsubscribe(self, demand_id: str) -> None:
        demand = self.demands.get(demand_id)
        if demand is None:
            raise NotFound(f"Subscription [{demand_id}] wasn't found.")
        if demand.state == "Unsubscribed":  # yagna: 404, not the contract's 410
            raise NotFound(f"Demand [{demand_id}] not found.")
        if demand.state == "Expired":
            raise Gone(f"Subscription [{demand_id}] expired.")
        demand.state = "Unsubscribed"
        demand.ended = self.clock.now()
        self._timers.cancel(demand.timer)
        demand.timer = None
        demand.queue.signal.fire()

    async def collect(self, demand_id: str, timeout: float, max_events: int) -> list[dict]:
        demand = self.demand(demand_id, for_events=True)
        await wait_until(
            lambda: len(demand.queue) > 0 or demand.state != "Active",
            demand.queue.signal,
            timeout,
            self._loop().time,
        )
        self.demand(demand_id, for_events=True)  # unsubscribed or expired meanwhile
        return demand.queue.take(max_events)

    # ------------------------------------------------------------------ negotiation
    def proposal(self, demand_id: str, proposal_id: str) -> Proposal:
        demand = self.demands.get(demand_id)
        if demand is None:
            raise NotFound(f"Subscription [{demand_id}] wasn't found.")
        proposal = self.proposals.get(proposal_id)
        if proposal is None or proposal.demand is not demand:
            raise NotFound(f"Proposal [{proposal_id}] not found (subscription [{demand_id}]).")
        return proposal

    def counter(
        self, demand_id: str, proposal_id: str, properties: Mapping[str, Any], constraints: str
    ) -> Proposal:
        """The requestor's counter-proposal; the provider answers it shortly after."""
        self.demand(demand_id)
        offer = self.proposal(demand_id, proposal_id)
        if not offer.from_provider:
            raise BadRequest(f"Can't react to own Proposal [{proposal_id}].")
        if offer.state == "Rejected":
            raise Gone(f"Proposal [{proposal_id}] was rejected.")
        if offer.countered or offer.state == "Accepted":
            raise Gone(f"Proposal [{proposal_id}] was already countered.")
        try:
            compiled = compile_constraints(constraints)
            flat = flatten_properties(properties)
        except ConstraintSyntaxError as exc:
            raise BadRequest(f"Invalid constraint. {exc}") from None
        provider = offer.provider
        if not (compiled.matches(offer.properties) and provider.constraints.matches(flat)):
            raise BadRequest(
                f"Proposal [{proposal_id}] doesn't match the counter-proposal: "
                + "; ".join(compiled.explain(offer.properties) or ["provider constraints not met"])
            )
        offer.countered = True
        ours = Proposal(
            id=_proposal_id(False),
            demand=offer.demand,
            provider=provider,
            from_provider=False,
            properties=dict(properties),
            constraints_text=constraints,
            timestamp=self.clock.now(),
            prev_id=offer.id,
            state="Draft",
        )
        self.proposals[ours.id] = ours
        self._timers.call_soon(self._provider_answers, ours, flat)
        return ours

    def _provider_answers(self, ours: Proposal, flat: dict[str, Any]) -> None:
        demand = ours.demand
        if demand.state != "Active" or ours.state != "Draft":
            return
        answer = ours.provider.answer_proposal(flat, self.clock.now())
        if isinstance(answer, Rejection):
            ours.state = "Rejected"
            demand.queue.put(
                {
                    "eventType": "ProposalRejectedEvent",
                    "eventDate": isoformat(self.clock.event_time()),
                    "proposalId": ours.id,
                    "reason": {"message": answer.message},
                }
            )
            return
        ours.countered = True
        theirs = Proposal(
            id=_proposal_id(True),
            demand=demand,
            provider=ours.provider,
            from_provider=True,
            properties=answer,
            constraints_text=ours.provider.constraints_text,
            timestamp=self.clock.now(),
            prev_id=ours.id,
            state="Draft",
        )
        self.proposals[theirs.id] = theirs
        demand.queue.put(self._proposal_event(theirs))

    def reject(self, demand_id: str, proposal_id: str, reason: Mapping[str, Any] | None) -> None:
        self.demand(demand_id)
        proposal = self.proposal(demand_id, proposal_id)
        if not proposal.from_provider:
            raise BadRequest(f"Can't reject own Proposal [{proposal_id}].")
        if proposal.state == "Rejected":
            raise Gone(f"Proposal [{proposal_id}] was already rejected.")
        if proposal.state == "Accepted":
            raise Gone(f"Proposal [{proposal_id}] was already accepted.")
        proposal.state = "Rejected"
        logger.debug("proposal %s rejected: %s", proposal_id, (reason or {}).get("message"))

    # ------------------------------------------------------------------ agreements
    def create_agreement(self, proposal_id: str, valid_to: datetime) -> Agreement:
        offer = self.proposals.get(proposal_id)
        if offer is None:  # yagna: 400, not 404
            raise BadRequest(
                f"Can't create Agreement for Proposal [{proposal_id}]. "
                f"Proposal [{proposal_id}] not found."
            )
        if not offer.from_provider:
            raise BadRequest(
                f"Can't create Agreement for an own Proposal [{proposal_id}]. "
                "You can promote only provider's Proposals to Agreement."
            )
        if offer.state == "Initial":
            raise Conflict(
                f"Can't create Agreement for Proposal [{proposal_id}]. No negotiation with "
                "Provider took place. (You should counter Proposal at least one time)"
            )
        if offer.state == "Rejected":
            raise Gone(f"Can't create Agreement for rejected Proposal [{proposal_id}].")
        if offer.state == "Accepted":
            raise Conflict(f"Can't create second Agreement for Proposal [{proposal_id}].")
        if offer.countered:
            raise BadRequest(
                f"Can't create Agreement for already countered Proposal [{proposal_id}]."
            )
        if offer.demand.state == "Expired":
            raise Gone(f"Subscription [{offer.demand.id}] expired.")
        now = self.clock.now()
        if valid_to <= now:
            raise BadRequest(
                f"Invalid date. Agreement validTo {isoformat(valid_to)} is in the past"
            )
        assert offer.prev_id is not None
        offer.state = "Accepted"
        agreement = Agreement(
            id=secrets.token_hex(32),
            demand_proposal=self.proposals[offer.prev_id],
            offer_proposal=offer,
            provider=offer.provider,
            valid_to=valid_to,
            timestamp=now,
        )
        self.agreements[agreement.id] = agreement
        self._arm(agreement, self.clock.deadline(valid_to, now), self._expire_unapproved)
        return agreement

    def _arm(
        self, agreement: Agreement, when: float, callback: Callable[[Agreement], None]
    ) -> None:
        self._timers.cancel(agreement.timer)
        agreement.timer = self._timers.call_at(when, callback, agreement)

    def agreement(self, agreement_id: str) -> Agreement:
        agreement = self.agreements.get(agreement_id)
        if agreement is None:
            raise NotFound(f"Agreement [{agreement_id}] not found.")
        return agreement

    def _transition_error(self, agreement: Agreement, target: str) -> Gone:
        return Gone(
            f"Agreement [{agreement.id}] invalid state transition from {agreement.state} "
            f"to {target}"
        )

    def confirm(self, agreement_id: str, app_session_id: str | None) -> None:
        agreement = self.agreement(agreement_id)
        if agreement.state != "Proposal":
            raise self._transition_error(agreement, "Pending")
        agreement.state = "Pending"
        agreement.app_session_id = app_session_id
        agreement.changed.fire()
        provider = agreement.provider
        if provider.chance("agreement_timeout", provider.faults.agreement_timeout):
            logger.debug("agreement %s: provider will never answer", agreement_id)
            return
        self._timers.call_soon(self._provider_decides, agreement)

    def _provider_decides(self, agreement: Agreement) -> None:
        if agreement.state != "Pending":
            return
        rejection = agreement.provider.answer_agreement()
        if rejection is not None:
            reason = {"message": rejection.message}
            event = self._event_body(agreement, "AgreementRejectedEvent", "Rejected", reason=reason)
            self._end(agreement, "Rejected", reason, None)
            self._log(agreement, event)
            return
        agreement.state = "Approved"
        agreement.approved_date = self.clock.now()
        agreement.provider.active_agreements.add(agreement.id)
        agreement.changed.fire()
        self._log(agreement, self._event_body(agreement, "AgreementApprovedEvent"))
        when = self._expiration_deadline(agreement)
        if when is not None:
            self._arm(agreement, when, self._expire_approved)
        else:
            self._timers.cancel(agreement.timer)
            agreement.timer = None

    def _expiration_deadline(self, agreement: Agreement) -> float | None:
        """When the demand's ``golem.srv.comp.expiration`` falls due (loop time), if set."""
        expiration = agreement.demand_properties.get(EXPIRATION)
        if isinstance(expiration, bool) or not isinstance(expiration, (int, float)):
            return None
        if not math.isfinite(expiration):
            return None
        try:
            target = datetime.fromtimestamp(expiration / 1000.0, timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
        return self.clock.deadline(target, agreement.demand_proposal.demand.timestamp)

    def _expire_unapproved(self, agreement: Agreement) -> None:
        if agreement.state in ("Proposal", "Pending"):
            self._end(agreement, "Expired", {"message": "Agreement expired before approval"}, None)

    def _expire_approved(self, agreement: Agreement) -> None:
        if agreement.state == "Approved":
            self.terminate(
                agreement.id,
                {"message": "Agreement expired", "golem.provider.code": "Expired"},
                terminator="Provider",
            )

    async def wait_for_approval(self, agreement_id: str, timeout: float) -> None:
        agreement = self.agreement(agreement_id)
        await wait_until(
            lambda: agreement.state != "Pending",
            agreement.changed,
            timeout,
            self._loop().time,
        )
        state = agreement.state
        if state == "Approved":
            return
        if state == "Pending":
            raise RequestTimeout(f"Timeout while waiting for Agreement [{agreement_id}] approval.")
        if state == "Proposal":
            raise Conflict(
                f"Agreement [{agreement_id}] should be confirmed, before waiting for approval."
            )
        if state in ("Rejected", "Cancelled"):
            message = (agreement.end_reason or {}).get("message", "")
            raise Gone(f"{state}: {message}" if message else state)
        raise Gone(f"Agreement [{agreement_id}] {state.lower()}.")

    def cancel(self, agreement_id: str, reason: Mapping[str, Any] | None) -> None:
        agreement = self.agreement(agreement_id)
        if agreement.state not in ("Proposal", "Pending"):
            raise self._transition_error(agreement, "Cancelled")
        event = self._event_body(
            agreement,
            "AgreementCancelledEvent",
            "Cancelled",
            reason=dict(reason or {"message": ""}),
        )
        self._end(agreement, "Cancelled", dict(reason or {}), "Requestor")
        self._log(agreement, event)

    def terminate(
        self, agreement_id: str, reason: Mapping[str, Any] | None, terminator: str = "Requestor"
    ) -> None:
        agreement = self.agreement(agreement_id)
        if agreement.state in ("Proposal", "Pending"):
            raise Conflict(
                f"Agreement [{agreement_id}] can not be terminated yet (is in {agreement.state} "
                "state)."
            )
        if agreement.state != "Approved":
            raise self._transition_error(agreement, "Terminated")
        reason = dict(reason or {})
        reason.setdefault("message", "")
        # Everything that could fail comes before the state changes, and everything after
        # it is bookkeeping that must happen together: a terminated agreement always frees
        # its provider and is always invoiced.
        event = self._event_body(
            agreement,
            "AgreementTerminatedEvent",
            "Terminated",
            terminator=terminator,
            signature="NoSignature",
            reason=reason,
        )
        provider = agreement.provider
        was_busy = provider.busy
        self._end(agreement, "Terminated", reason, terminator)
        provider.active_agreements.discard(agreement.id)
        self._log(agreement, event)
        logger.debug("agreement %s terminated by %s: %s", agreement_id, terminator, reason)
        if was_busy:  # its offer was withdrawn: publish it again
            self.offer_again(provider)
        self.hooks.ended(agreement)

    def _end(
        self, agreement: Agreement, state: str, reason: dict[str, Any], terminator: str | None
    ) -> None:
        agreement.state = state
        agreement.end_reason = reason
        agreement.terminator = terminator
        agreement.terminated_date = self.clock.now()
        self._timers.cancel(agreement.timer)
        agreement.timer = None
        agreement.changed.fire()

    def termination_reason(self, agreement_id: str) -> dict[str, Any]:
        agreement = self.agreement(agreement_id)
        if agreement.state != "Terminated":
            raise BadRequest(f"Agreement [{agreement_id}] not terminated yet.")
        return {
            "eventType": "AgreementTerminatedEvent",
            "eventDate": isoformat(agreement.terminated_date or agreement.timestamp),
            "agreementId": agreement.id,
            "terminator": agreement.terminator or "Requestor",
            "signature": "NoSignature",
            "reason": agreement.end_reason or {"message": ""},
        }

    def _event_body(
        self, agreement: Agreement, event_type: str, state: str | None = None, **extra: Any
    ) -> tuple[datetime, dict[str, Any]]:
        """An agreement event, showing the agreement in ``state`` (default: its own)."""
        date = self.clock.event_time()
        # ya_market's generated client reads these events as AgreementEvent, which
        # requires the whole agreement; the spec's AgreementOperationEvent allows it.
        snapshot = agreement.to_json()
        if state is not None:
            snapshot["state"] = state
        body = {
            "eventType": event_type,
            "eventDate": isoformat(date),
            "agreementId": agreement.id,
            "agreement": snapshot,
            **extra,
        }
        return date, body

    def _log(self, agreement: Agreement, event: tuple[datetime, dict[str, Any]]) -> None:
        self.agreement_events.append(event[0], agreement.app_session_id, event[1])

    def list_agreements(
        self,
        app_session_id: str | None,
        state: str | None,
        after: datetime | None,
        before: datetime | None,
    ) -> list[dict[str, Any]]:
        found = []
        for agreement in self.agreements.values():
            if app_session_id is not None and agreement.app_session_id != app_session_id:
                continue
            if state is not None and agreement.state != state:
                continue
            if after is not None and agreement.timestamp <= after:
                continue
            if before is not None and agreement.timestamp >= before:
                continue
            found.append(agreement.list_entry())
        return found

    # ------------------------------------------------------------------ memory
    def prune(self, retention: float) -> int:
        """Forget what ended more than ``retention`` seconds ago; returns how many went.

        Ended demands go with all their proposals; settled proposals of live demands and
        ended agreements go on their own. Events older than that go too.
        """
        cutoff = self.clock.now() - timedelta(seconds=retention)
        gone = 0
        ended = {d.id for d in self.demands.values() if d.ended is not None and d.ended < cutoff}
        for demand_id in ended:
            del self.demands[demand_id]
        for proposal in list(self.proposals.values()):
            settled = proposal.countered or proposal.state in SETTLED_PROPOSAL_STATES
            if proposal.demand.id in ended or (settled and proposal.timestamp < cutoff):
                del self.proposals[proposal.id]
                gone += 1
        for agreement in list(self.agreements.values()):
            end = agreement.terminated_date
            if agreement.state in ENDED_AGREEMENT_STATES and end is not None and end < cutoff:
                del self.agreements[agreement.id]
                gone += 1
        return gone + len(ended) + self.agreement_events.prune(cutoff)
