"""The simulated network as a whole: providers, market, exe-units and payments, wired.

This is where the parts react to each other the way a real provider node does: an approved
agreement lets activities be created; every activity sends debit notes at the negotiated
interval with the cost of its measured usage; a debit note left unaccepted past its
deadline, a rejected document, a crashed exe-unit or an expired agreement makes the
provider terminate; every terminated agreement is followed by an invoice.
"""

from __future__ import annotations

import asyncio
import logging
import random
import shutil
import tempfile
from collections.abc import Coroutine
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from golem_tasks.devnet.activity import Activity, ExeUnits
from golem_tasks.devnet.clock import Clock, Timers
from golem_tasks.devnet.errors import ApiError, BadRequest, NotFound
from golem_tasks.devnet.market import Agreement, Market
from golem_tasks.devnet.payment import DebitNote, Document, Payments
from golem_tasks.devnet.platform import PaymentPlatform
from golem_tasks.devnet.profile import Profile
from golem_tasks.devnet.providers import (
    ACCEPT_TIMEOUT,
    DEBIT_NOTE_INTERVAL,
    PAYMENT_TIMEOUT,
    Provider,
    build_providers,
)

logger = logging.getLogger(__name__)

#: Real seconds ended objects (demands, agreements, activities, settled payment documents,
#: released allocations) and events stay readable before they are forgotten.
RETENTION = 600.0
#: Real seconds a payment document nobody decided on stays, once its agreement has ended.
UNSETTLED_RETENTION = 3600.0
#: Longest pause between two sweeps for what can be forgotten.
SWEEP_EVERY = 30.0


@dataclass(frozen=True)
class PaymentTerms:
    """Negotiated payment terms of one agreement (simulated seconds)."""

    debit_note_interval: float
    payment_timeout: float | None
    accept_timeout: float | None


class Network:
    """Everything behind the REST API of one devnet."""

    def __init__(
        self,
        profile: Profile,
        seed: int,
        clock: Clock,
        platform: PaymentPlatform,
        workdir: Path | None = None,
        retention: float = RETENTION,
    ) -> None:
        self.seed = seed
        self.retention = retention
        #: yagna 0.17.6 does not implement rejecting debit notes (501); the contract has it.
        self.debit_note_rejection = True
        self.clock = clock
        self.platform = platform
        self.requestor_id = f"0x{random.Random(f'requestor:{seed}').getrandbits(160):040x}"
        self.providers: list[Provider] = build_providers(profile.expand(), seed, platform)
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="golem-devnet-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.market = Market(clock, self.providers, self.requestor_id)
        self.exeunits = ExeUnits(clock, self.workdir)
        self.payments = Payments(clock, self.requestor_id, platform)
        self.market.hooks.ended = self._agreement_ended
        self.exeunits.on_crash = self._activity_crashed
        self.payments.on_rejected = self._document_rejected
        self._activities_of: dict[str, list[Activity]] = {}
        self._tasks: set[asyncio.Task] = set()
        self._timers = Timers()

    def start(self) -> None:
        """Start the background work (call inside the event loop that will serve it)."""
        self._spawn(self._sweep_forever())

    async def close(self) -> None:
        """Stop everything: timers, debit notes, activities (and their processes)."""
        self._timers.cancel_all()
        self.market.close()
        self.payments.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.exeunits.close()
        if self._own_workdir:
            await asyncio.to_thread(shutil.rmtree, self.workdir, True)

    # ------------------------------------------------------------------ memory
    async def _sweep_forever(self) -> None:
        pause = max(0.05, min(SWEEP_EVERY, self.retention / 4))
        while True:
            await asyncio.sleep(pause)
            try:
                self.sweep()
            except Exception:
                logger.exception("devnet bug while forgetting ended objects")

    def sweep(self) -> int:
        """Forget what ended more than ``retention`` seconds ago; returns how many went."""
        gone = self.market.prune(self.retention)
        gone += len(self.exeunits.prune(self.retention))
        for agreement_id in list(self._activities_of):
            if agreement_id in self.market.agreements:
                continue
            activities = self._activities_of[agreement_id]
            if all(a.id not in self.exeunits.activities for a in activities):
                del self._activities_of[agreement_id]
        gone += self.payments.prune(
            self.retention, max(self.retention, UNSETTLED_RETENTION), self._agreement_live
        )
        return gone

    def _agreement_live(self, agreement_id: str) -> bool:
        agreement = self.market.agreements.get(agreement_id)
        return agreement is not None and agreement.state in ("Proposal", "Pending", "Approved")

    def identity(self) -> dict[str, Any]:
        return {"identity": self.requestor_id, "name": "devnet-requestor", "role": "manager"}

    # ------------------------------------------------------------------ faults
    async def gate(self, provider: Provider, operation: str) -> None:
        """Latency and injected failures of calls that travel to ``provider``.

        ``operation`` names the kind of call: whether the n-th call of a kind fails does not
        depend on how many calls of other kinds came before (see :mod:`providers`).
        """
        faults = provider.faults
        if faults.api_latency_sec > 0:
            await asyncio.sleep(faults.api_latency_sec)
        if provider.chance(f"error:{operation}", faults.error_rate):
            raise ApiError(
                f"GSB error: remote service at /net/{provider.node_id} failed: "
                "connection reset (devnet fault: error_rate)",
                status=faults.error_status,
            )

    # ------------------------------------------------------------------ activities
    def create_activity(self, agreement_id: str) -> Activity:
        agreement = self.market.agreements.get(agreement_id)
        if agreement is None:
            raise NotFound(f"Agreement [{agreement_id}] not found")
        if agreement.state != "Approved":
            raise BadRequest(
                f"Agreement {agreement_id} is not Approved. Current state: {agreement.state}"
            )
        activity = self.exeunits.create(agreement_id, agreement.provider)
        self._activities_of.setdefault(agreement_id, []).append(activity)
        self._spawn(self._debit_notes(activity, agreement))
        return activity

    def destroy_activity(self, activity: Activity) -> None:
        self.exeunits.terminate(activity)

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("devnet bug in a background task", exc_info=task.exception())

    def _activity_crashed(self, activity: Activity) -> None:
        agreement = self.market.agreements.get(activity.agreement_id)
        if agreement is not None and agreement.state == "Approved":
            self.market.terminate(
                agreement.id,
                {
                    "message": f"Activity {activity.id} crashed: ExeUnit terminated unexpectedly",
                    "golem.provider.code": "ActivityCrashed",
                },
                terminator="Provider",
            )

    # ------------------------------------------------------------------ payments
    @staticmethod
    def terms(agreement: Agreement) -> PaymentTerms:
        offer = agreement.offer_proposal.properties
        interval = offer.get(DEBIT_NOTE_INTERVAL) or agreement.provider.spec.debit_note_interval_sec
        timeout = offer.get(PAYMENT_TIMEOUT)
        accept = offer.get(ACCEPT_TIMEOUT)
        return PaymentTerms(
            debit_note_interval=float(interval),
            payment_timeout=float(timeout) if timeout else None,
            accept_timeout=float(accept) if accept else None,
        )

    def cost(self, activity: Activity) -> tuple[Decimal, list[float]]:
        usage = self.exeunits.usage(activity)
        return activity.provider.cost(usage), usage

    async def _debit_notes(self, activity: Activity, agreement: Agreement) -> None:
        terms = self.terms(agreement)
        while True:
            await self.clock.sleep(terms.debit_note_interval)
            if not activity.alive or agreement.state != "Approved":
                return
            amount, usage = self.cost(activity)
            note = self.payments.issue_debit_note(
                agreement_id=agreement.id,
                activity_id=activity.id,
                issuer_id=agreement.provider.node_id,
                amount=amount,
                usage=usage,
                payment_timeout=terms.payment_timeout,
                session=agreement.app_session_id,
            )
            deadlines = [terms.accept_timeout]
            if note.due is not None:
                deadlines.append(terms.payment_timeout)
            chosen = [d for d in deadlines if d]
            if chosen:
                self._timers.call_later(
                    self.clock.real_seconds(min(chosen)), self._check_paid, note, agreement
                )

    def _check_paid(self, note: DebitNote, agreement: Agreement) -> None:
        if note.status in ("ACCEPTED", "SETTLED") or agreement.state != "Approved":
            return
        logger.info("agreement %s: debit note %s not accepted in time", agreement.id, note.id)
        self.market.terminate(
            agreement.id,
            {
                "message": f"Debit note {note.id} was not accepted in time",
                "golem.provider.code": "DebitNoteNotAccepted",
            },
            terminator="Provider",
        )

    def _document_rejected(self, document: Document) -> None:
        agreement = self.market.agreements.get(document.agreement_id)
        if agreement is not None and agreement.state == "Approved":
            self.market.terminate(
                agreement.id,
                {
                    "message": f"Requestor rejected debit note {document.id}",
                    "golem.provider.code": "DebitNoteRejected",
                },
                terminator="Provider",
            )

    def _agreement_ended(self, agreement: Agreement) -> None:
        """The provider stops every activity of the agreement and invoices the total."""
        activities = self._activities_of.get(agreement.id, [])
        total = Decimal(0)
        for activity in activities:
            self.exeunits.terminate(activity, reason="Agreement terminated")
            total += self.cost(activity)[0]
        self.payments.issue_invoice(
            agreement_id=agreement.id,
            activity_ids=[a.id for a in activities],
            issuer_id=agreement.provider.node_id,
            amount=total,
            payment_timeout=self.terms(agreement).payment_timeout,
            session=agreement.app_session_id,
        )
