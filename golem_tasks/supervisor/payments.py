"""Debit notes and invoices: checked against the hourly budget, stored, then accepted,
or rejected when their provider charged more than the budget kept for it.

Documents are handled one at a time, in arrival order, so the budget rule sees every
earlier decision. The decision is stored before yagna is told, and stays: an acceptance
whose allocation was released meanwhile is paid from the current one. Nothing is dropped:
a document whose handling fails is tried again with back-off (a bounded number of times,
then the failure is recorded and only reconciliation tries again), and yagna's list of
documents is reconciled at start and every few minutes (golem-core's event collectors can
miss one when they fail). The cost manager (``--max-price``) judges an activity on each of
its accepted notes.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from golem.node import GolemNode
from golem.resources import DebitNote, Invoice, NewDebitNote, NewInvoice
from golem.utils.low import get_requestor_api
from ya_payment import models

from golem_tasks.clock import Clock
from golem_tasks.db.types import Pool
from golem_tasks.retry import NOT_IMPLEMENTED, is_transient, retrying
from golem_tasks.store import activities, agreements, errors, ledger
from golem_tasks.supervisor.allocations import Allocations

logger = logging.getLogger(__name__)

RECEIVED = "RECEIVED"
RECONCILE_EVERY_S = 300.0
PAGE = 100
MAX_PAGES = 1000
MAX_DELAY_S = 60.0
#: Failed handlings of one document before it is left to reconciliation (with an error).
MAX_FAILURES = 8
#: What a rejection tells the provider (yagna's RejectionReason).
REJECTION_REASON = "INCORRECT_AMOUNT"

Document = DebitNote | Invoice


@dataclass(frozen=True)
class Kind:
    """What differs between debit notes and invoices on yagna's side, as data."""

    resource: type[DebitNote] | type[Invoice]
    ledger: ledger.Kind
    #: The document's id in yagna's listings, and its amount in its data.
    id_field: str
    amount_field: str
    #: The debit note's activity (an invoice covers its whole agreement).
    activity_field: str | None
    #: The requestor API's calls that list and reject documents of this kind.
    list_call: str
    reject_call: str
    #: Whether the document ends its agreement's payments (the run's end waits for one).
    final: bool

    @property
    def name(self) -> str:
        return self.resource.__name__


DEBIT_NOTE = Kind(
    DebitNote,
    ledger.DEBIT_NOTE,
    id_field="debit_note_id",
    amount_field="total_amount_due",
    activity_field="activity_id",
    list_call="get_debit_notes",
    reject_call="reject_debit_note",
    final=False,
)
INVOICE = Kind(
    Invoice,
    ledger.INVOICE,
    id_field="invoice_id",
    amount_field="amount",
    activity_field=None,
    list_call="get_invoices",
    reject_call="reject_invoice",
    final=True,
)
KINDS = (DEBIT_NOTE, INVOICE)


def kind_of(document: Document) -> Kind:
    return DEBIT_NOTE if isinstance(document, DebitNote) else INVOICE


class Payments:
    def __init__(
        self,
        node: GolemNode,
        pool: Pool,
        *,
        run_id: str,
        run_start: datetime,
        budget: Decimal,
        allocations: Allocations,
        clock: Clock,
        max_price: Decimal | None = None,
        warmup_s: float = 300.0,
    ) -> None:
        self.node = node
        self.pool = pool
        self.run_id = run_id
        self.run_start = run_start
        self.budget = budget
        self.allocations = allocations
        self.clock = clock
        self.max_price = max_price
        self.warmup_s = warmup_s
        self._queue: asyncio.Queue[Document] = asyncio.Queue()
        self._queued: set[str] = set()
        self._failures: dict[str, int] = {}
        self._retries: set[asyncio.Task[None]] = set()
        #: Documents whose handling failed MAX_FAILURES times: left to reconciliation.
        self._given_up: set[str] = set()
        self.invoice_seen = asyncio.Event()

    def enqueue(self, document: Document) -> None:
        """Handle this document (once, however often it is announced)."""
        if document.id not in self._queued:
            self._queued.add(document.id)
            self._queue.put_nowait(document)

    async def start(self) -> None:
        async def announced(event: Any) -> None:
            self.enqueue(event.resource)

        await self.node.event_bus.on(NewDebitNote, announced)
        await self.node.event_bus.on(NewInvoice, announced)

    async def run(self) -> None:
        """Handle documents forever, one at a time; reconcile with yagna now and then."""
        reconciler = asyncio.create_task(self._reconcile_periodically())
        try:
            while True:
                document = await self._queue.get()
                self._queued.discard(document.id)
                try:
                    await self._handle(document)
                    self._failures.pop(document.id, None)
                    self._given_up.discard(document.id)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self._retry_later(document, exc)
                finally:
                    self._queue.task_done()
        finally:
            reconciler.cancel()
            for task in self._retries:
                task.cancel()

    async def drain(self, timeout: float) -> None:
        """Wait until every document announced so far is handled (for the end of a run)."""
        try:
            await asyncio.wait_for(self._queue.join(), timeout)
        except asyncio.TimeoutError:
            logger.warning("%d payment documents still unhandled", self._queue.qsize())

    async def _handle(self, document: Document) -> None:
        """Decide one document, store the decision, tell yagna; then judge its activity's
        cost (an accepted debit note) or note that an invoice came."""
        kind = kind_of(document)
        data: models.DebitNote | models.Invoice = await retrying(
            lambda: document.get_data(force=True), what=f"get {kind.ledger.name}"
        )
        if not await self._ours(data.agreement_id):
            return
        await self.allocations.current()
        facts = ledger.Document(
            kind.ledger,
            document.id,
            data.agreement_id,
            Decimal(getattr(data, kind.amount_field)),
            activity_id=getattr(data, kind.activity_field) if kind.activity_field else None,
            issued_at=data.timestamp,
        )
        async with self.pool.connection() as conn:
            decision = await ledger.decide(
                conn, facts, run_id=self.run_id, budget=self.budget, now=self.clock.now()
            )
        await self._settle(document, facts, str(data.status), decision)
        if kind.final:
            self.invoice_seen.set()
        elif decision.accepted and facts.activity_id is not None:
            await self._judge_cost(facts.activity_id)

    def _retry_later(self, document: Document, exc: Exception) -> None:
        failures = self._failures.get(document.id, 0) + 1
        self._failures[document.id] = failures
        delay = min(MAX_DELAY_S, 2.0**failures)
        if failures >= MAX_FAILURES and not isinstance(exc, ledger.NoAllocation):
            self._give_up(document, exc, failures)
            return
        if isinstance(exc, ledger.NoAllocation):
            logger.info(
                "%s %s waits for this hour's allocation", type(document).__name__, document.id
            )
        else:
            logger.warning(
                "could not handle %s %s (%s: %s); again in %gs",
                type(document).__name__,
                document.id,
                type(exc).__name__,
                exc,
                delay,
            )

        async def later() -> None:
            await asyncio.sleep(delay)
            self.enqueue(document)

        task = asyncio.create_task(later())
        self._retries.add(task)
        task.add_done_callback(self._retries.discard)

    def _give_up(self, document: Document, exc: Exception, failures: int) -> None:
        """Stop retrying a document that keeps failing; say why where users look."""
        self._failures.pop(document.id, None)
        self._given_up.add(document.id)
        message = (
            f"{type(document).__name__} {document.id} could not be handled after {failures} "
            f"attempts ({type(exc).__name__}: {exc}); it is tried again only when "
            f"reconciliation finds it still waiting in yagna"
        )
        logger.error("%s", message)

        async def record() -> None:
            async with self.pool.connection() as conn:
                await errors.record(
                    conn, self.run_id, source="payment", kind="payment", message=message
                )

        task = asyncio.create_task(record())
        self._retries.add(task)
        task.add_done_callback(self._retries.discard)

    async def _reconcile_periodically(self) -> None:
        while True:
            await asyncio.sleep(RECONCILE_EVERY_S)
            try:
                await self.reconcile()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("payment reconciliation failed: %s", exc)

    async def reconcile(self) -> None:
        """Queue this run's documents that yagna still holds as received, oldest first
        (also those given up on: a periodic, bounded retry)."""
        api = get_requestor_api(DebitNote, self.node)
        async with self.pool.connection() as conn:
            ours = await agreements.run_ids(conn, self.run_id)
        since = self.run_start - timedelta(minutes=5)
        waiting: list[tuple[datetime, int, str]] = []
        for index, kind in enumerate(KINDS):
            for doc in await self._list(getattr(api, kind.list_call), since):
                if doc.agreement_id in ours and str(doc.status).upper() == RECEIVED:
                    waiting.append((doc.timestamp, index, getattr(doc, kind.id_field)))
        waiting.sort()
        for _, index, doc_id in waiting:
            self.enqueue(KINDS[index].resource(self.node, doc_id))
        self._given_up.clear()
        if waiting:
            logger.info("%d payment documents waiting in yagna queued again", len(waiting))

    async def _list(
        self, list_page: Callable[..., Awaitable[list[Any]]], since: datetime
    ) -> list[Any]:
        """Every document after ``since``, a page at a time (yagna pages oldest first)."""
        found: list[Any] = []
        after = since
        for _ in range(MAX_PAGES):
            page = await retrying(
                functools.partial(list_page, after_timestamp=after, max_items=PAGE),
                what="list payment documents",
            )
            found.extend(page)
            if len(page) < PAGE:
                break
            after = max(doc.timestamp for doc in page)
        return found

    async def _ours(self, agreement_id: str) -> bool:
        async with self.pool.connection() as conn:
            agreement = await agreements.get(conn, agreement_id)
        return agreement is not None and agreement.run_id == self.run_id

    async def _settle(
        self, document: Document, facts: ledger.Document, status: str, decision: ledger.Decision
    ) -> None:
        """Tell yagna what was decided (again, after a crash): accept, or reject."""
        if status.upper() != RECEIVED:
            return  # yagna knows already
        if decision.accepted:
            await self._accept(document, facts, decision)
        else:
            await self._reject(document, facts.agreement_id, decision)

    async def _accept(
        self, document: Document, facts: ledger.Document, decision: ledger.Decision
    ) -> None:
        """Accept from the allocation the decision was made under, or, when that one is
        gone (released after its hour, replaced by a new --budget), from the current one:
        money decided stays decided."""
        kind = type(document).__name__
        amount = facts.amount
        allocation_id = decision.allocation_id
        if allocation_id is None or not await self._usable(allocation_id):
            allocation_id = await self._pay_from_current(facts, decision)
        try:
            paying = allocation_id
            await retrying(
                lambda: document.accept(self.node.allocation(paying), amount),
                what=f"accept {kind}",
            )
        except Exception as exc:
            if is_transient(exc) or allocation_id != decision.allocation_id:
                raise
            # yagna no longer takes that allocation (it timed out there): the current one.
            logger.info("%s %s: allocation %s refused (%s)", kind, document.id, allocation_id, exc)
            paying = await self._pay_from_current(facts, decision)
            await retrying(
                lambda: document.accept(self.node.allocation(paying), amount),
                what=f"accept {kind}",
            )
        logger.debug("accepted %s %s for %s", kind, document.id, amount)

    async def _usable(self, allocation_id: str) -> bool:
        async with self.pool.connection() as conn:
            allocation = await ledger.get_allocation(conn, allocation_id)
        return allocation is not None and allocation.released_at is None

    async def _pay_from_current(self, facts: ledger.Document, decision: ledger.Decision) -> str:
        allocation = await self.allocations.current()
        async with self.pool.connection() as conn:
            await ledger.set_paid_from(conn, facts, allocation.id)
        logger.info(
            "%s %s decided under allocation %s is paid from %s",
            facts.kind.name,
            facts.id,
            decision.allocation_id,
            allocation.id,
        )
        return allocation.id

    async def _reject(
        self, document: Document, agreement_id: str, decision: ledger.Decision
    ) -> None:
        """Reject an overcharge through yagna, end the agreement, never hire it again."""
        kind = kind_of(document)
        reason = decision.reason or "charged more than the budget kept for it"
        rejection = models.Rejection(
            # The generated model's annotation says RejectionReason; yagna takes its value.
            rejection_reason=cast(models.RejectionReason, REJECTION_REASON),
            total_amount_accepted="0",
            message=reason[:500],
        )
        api = get_requestor_api(DebitNote, self.node)
        call = getattr(api, kind.reject_call)
        message = f"{kind.name} {document.id} rejected: {reason}"
        try:
            await retrying(lambda: call(document.id, rejection), what=f"reject {kind.name}")
        except Exception as exc:
            if getattr(exc, "status", None) != NOT_IMPLEMENTED:
                raise
            # yagna 0.17.6 cannot reject debit notes: the note stays unaccepted there, and
            # the agreement still ends and its provider is still never hired again.
            message += " (yagna does not implement rejecting it: left unaccepted)"
        async with self.pool.connection() as conn:
            await agreements.request_end(conn, agreement_id, message, avoid=True)
            # Also when the agreement has ended already (always so for an invoice), which
            # the end request leaves alone: its provider is never hired again.
            await agreements.avoid_provider_of(conn, agreement_id, message)
            if decision.known:
                return  # decided before a crash, told to yagna only now: recorded before
            logger.warning("%s", message)
            await errors.record(
                conn,
                self.run_id,
                source="payment",
                kind="overcharge",
                message=message,
                agreement_id=agreement_id,
            )

    async def _judge_cost(self, activity_id: str) -> None:
        """The cost manager: stop an activity whose results cost more than ``max_price``."""
        if self.max_price is None:
            return
        async with self.pool.connection() as conn:
            cost = await ledger.activity_cost(conn, activity_id)
            if cost.age_s < self.warmup_s:
                return
            per_result = cost.per_result
            if per_result is not None and per_result <= self.max_price:
                return
            what = (
                f"{per_result.normalize():f} per result"
                if per_result is not None
                else f"{cost.cost.normalize():f} spent and no result"
            )
            reason = f"cost: {what} is over --max-price {self.max_price.normalize():f}"
            agreement_id = await activities.request_stop(conn, activity_id, reason)
            if agreement_id is not None:
                logger.info("stopping activity %s: %s", activity_id, reason)
                await agreements.avoid_provider_of(conn, agreement_id, reason)
                await errors.record(
                    conn,
                    self.run_id,
                    source="supervisor",
                    kind="cost",
                    message=reason,
                    agreement_id=agreement_id,
                    activity_id=activity_id,
                )
