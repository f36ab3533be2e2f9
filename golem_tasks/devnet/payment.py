"""Payments: the requestor's account, allocations, debit notes, invoices and their events.

Acceptance follows yagna's rules: the accepted amount must equal the document's amount, only
the part not accepted before is spent (debit notes are cumulative per activity, an invoice
covers its whole agreement), and an allocation never pays more than it has left
("Not enough funds"). The devnet settles accepted payments at once.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Any, ClassVar

from golem_tasks.devnet.clock import Clock, Timers, after, isoformat, parse_timestamp
from golem_tasks.devnet.errors import BadRequest, Gone, NotFound
from golem_tasks.devnet.events import EventLog
from golem_tasks.devnet.platform import PaymentPlatform

logger = logging.getLogger(__name__)

WEI = Decimal(10) ** -18
#: The largest amount accepted anywhere (far above any GLM balance).
MAX_AMOUNT = Decimal(10) ** 12
#: Amounts up to MAX_AMOUNT with 18 decimal places, exactly (the default context keeps 28
#: digits, too few for 1e12 at wei precision).
MONEY = Context(prec=40, rounding=ROUND_HALF_UP)
REJECTION_REASONS = frozenset({"UNSOLICITED_SERVICE", "BAD_SERVICE", "INCORRECT_AMOUNT"})
#: Payment due date of an invoice when no payment timeout was negotiated (seconds).
DEFAULT_INVOICE_DUE = 24 * 3600.0


def to_wei(value: Decimal) -> Decimal:
    """``value`` rounded to whole wei (18 decimal places)."""
    return value.quantize(WEI, context=MONEY)


def amount_text(value: Decimal) -> str:
    """A GLM amount as yagna prints it: plain decimal, at most 18 places, no trailing zeros."""
    text = format(to_wei(value), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def parse_amount(value: Any, what: str) -> Decimal:
    """A non-negative decimal amount of at most MAX_AMOUNT."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise BadRequest(f"{what} must be a decimal amount")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise BadRequest(f"{what} is not a decimal number: {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise BadRequest(f"{what} must be a non-negative number")
    if amount > MAX_AMOUNT:
        raise BadRequest(f"{what} is too large (at most {MAX_AMOUNT:f})")
    return amount


@dataclass(eq=False)
class Allocation:
    id: str
    address: str
    platform: str
    total: Decimal
    timestamp: datetime
    timeout: datetime | None
    spent: Decimal = Decimal(0)
    released: datetime | None = None  # when it was released (or timed out)
    timer: asyncio.Handle | None = None  # its timeout

    @property
    def remaining(self) -> Decimal:
        return self.total - self.spent

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "allocationId": self.id,
            "address": self.address,
            "paymentPlatform": self.platform,
            "totalAmount": amount_text(self.total),
            "spentAmount": amount_text(self.spent),
            "remainingAmount": amount_text(self.remaining),
            "timestamp": isoformat(self.timestamp),
            "makeDeposit": False,
        }
        if self.timeout is not None:
            body["timeout"] = isoformat(self.timeout)
        return body


@dataclass(frozen=True)
class Kind:
    """What differs between debit notes and invoices in yagna's payment API, as data."""

    #: The prefix of its event types (``DebitNoteReceivedEvent``).
    event: str
    #: Its name in error messages.
    label: str
    #: Its id's key in its JSON body and in its events.
    id_key: str


DEBIT_NOTE = Kind("DebitNote", "Debit note", "debitNoteId")
INVOICE = Kind("Invoice", "Invoice", "invoiceId")


@dataclass(eq=False)
class Document:
    """What debit notes and invoices share: parties, amount, status."""

    kind: ClassVar[Kind]

    id: str
    agreement_id: str
    issuer_id: str
    payee_addr: str
    timestamp: datetime
    amount: Decimal
    due: datetime | None
    session: str | None
    status: str = "RECEIVED"
    changed: datetime | None = None  # when the status last changed
    payments: list[dict[str, Any]] = field(default_factory=list)

    def set_status(self, status: str, when: datetime) -> None:
        self.status = status
        self.changed = when

    @property
    def settled(self) -> bool:
        """The requestor has decided: nothing more can happen to the document."""
        return self.status != "RECEIVED"

    def own_json(self) -> dict[str, Any]:
        """The fields of its JSON body that only its kind has."""
        raise NotImplementedError


@dataclass(eq=False)
class DebitNote(Document):
    kind: ClassVar[Kind] = DEBIT_NOTE
    activity_id: str = ""
    previous_id: str | None = None
    usage: list[float] = field(default_factory=list)

    def own_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "activityId": self.activity_id,
            "totalAmountDue": amount_text(self.amount),
            "usageCounterVector": self.usage,
        }
        if self.previous_id is not None:
            body["previousDebitNoteId"] = self.previous_id
        if self.due is not None:
            body["paymentDueDate"] = isoformat(self.due)
        return body


@dataclass(eq=False)
class Invoice(Document):
    kind: ClassVar[Kind] = INVOICE
    activity_ids: list[str] = field(default_factory=list)

    def own_json(self) -> dict[str, Any]:
        return {
            "activityIds": self.activity_ids,
            "amount": amount_text(self.amount),
            "paymentDueDate": isoformat(self.due or self.timestamp),
        }


class Payments:
    """The requestor's side of payments in one devnet."""

    def __init__(
        self,
        clock: Clock,
        requestor_id: str,
        platform: PaymentPlatform,
        balance: Decimal = Decimal(1000),
    ) -> None:
        self.clock = clock
        self.requestor_id = requestor_id
        self.platform = platform
        self.balance = balance
        self.allocations: dict[str, Allocation] = {}
        self.debit_notes: dict[str, DebitNote] = {}
        self.invoices: dict[str, Invoice] = {}
        self.events = {DEBIT_NOTE: EventLog(), INVOICE: EventLog()}
        self.payments = EventLog()
        self._accepted_activity: dict[str, Decimal] = {}
        self._accepted_agreement: dict[str, Decimal] = {}
        self._last_note: dict[str, str] = {}
        self._agreement_of: dict[str, str] = {}  # activity id -> agreement id
        self._invoice_of: dict[str, str] = {}
        self._timers = Timers()
        #: Called when the requestor rejects a document, so the provider can react.
        self.on_rejected: Callable[[Document], None] = lambda document: None

    def close(self) -> None:
        self._timers.cancel_all()

    # ------------------------------------------------------------------ accounts
    def accounts(self) -> list[dict[str, Any]]:
        return [
            {
                "platform": self.platform.name,
                "address": self.requestor_id,
                "driver": self.platform.driver,
                "network": self.platform.network,
                "token": self.platform.token,
                "send": True,
                "receive": False,
            }
        ]

    def status(self) -> dict[str, Any]:
        """The account as ``yagna payment status --json`` shows it (yagna's StatusResult).

        ``requested`` is what providers asked for per agreement (its invoice, else its
        activities' latest debit notes), ``accepted`` what was accepted; the devnet pays
        at once, so ``confirmed`` equals ``accepted``. Gas is a fixed 1 (t)ETH."""
        requested: dict[str, Decimal] = {}
        latest: dict[tuple[str, str], Decimal] = {}
        for note in self.debit_notes.values():
            key = (note.agreement_id, note.activity_id)
            latest[key] = max(latest.get(key, Decimal(0)), note.amount)
        for (agreement_id, _), amount in latest.items():
            requested[agreement_id] = requested.get(agreement_id, Decimal(0)) + amount
        for invoice in self.invoices.values():
            requested[invoice.agreement_id] = invoice.amount
        accepted = {a: v for a, v in self._accepted_agreement.items() if v > 0}
        reserved = sum(
            (a.remaining for a in self.allocations.values() if not a.released), Decimal(0)
        )

        def stat(amounts: dict[str, Decimal]) -> dict[str, Any]:
            total = sum(amounts.values(), Decimal(0))
            return {"totalAmount": amount_text(total), "agreementsCount": len(amounts)}

        nothing = stat({})
        short, long = self.platform.gas_currency
        return {
            "amount": amount_text(self.balance),
            "reserved": amount_text(reserved),
            "outgoing": {
                "requested": stat(requested),
                "accepted": stat(accepted),
                "confirmed": stat(accepted),
            },
            "incoming": {"requested": nothing, "accepted": nothing, "confirmed": nothing},
            "driver": self.platform.driver,
            "network": self.platform.network,
            "token": self.platform.token,
            "gas": {"currency_short_name": short, "currency_long_name": long, "balance": "1"},
            "block_number": 0,
            "block_datetime": isoformat(self.clock.now()),
        }

    # ------------------------------------------------------------------ allocations
    def create_allocation(self, body: Mapping[str, Any]) -> Allocation:
        total = parse_amount(body.get("totalAmount"), "totalAmount")
        platform = self._platform_of(body.get("paymentPlatform"))
        address = body.get("address") or self.requestor_id
        if not isinstance(address, str) or address.lower() != self.requestor_id.lower():
            raise BadRequest(f"Account {address} not registered on platform {platform}")
        now = self.clock.now()
        timeout = self._timeout_of(body.get("timeout"), now)
        reserved = sum(
            (a.remaining for a in self.allocations.values() if not a.released), Decimal(0)
        )
        if total > self.balance - reserved:
            raise BadRequest(
                "Insufficient funds to make allocation. Top up your account or release all "
                "existing allocations to unlock the funds via `yagna payment release-allocations`"
                f" (available {amount_text(self.balance - reserved)} {self.platform.token}, "
                f"requested {amount_text(total)})"
            )
        allocation = Allocation(
            id=str(uuid.uuid4()),
            address=self.requestor_id,
            platform=platform,
            total=total,
            timestamp=now,
            timeout=timeout,
        )
        self.allocations[allocation.id] = allocation
        self._schedule_release(allocation, now)
        return allocation

    def _platform_of(self, value: Any) -> str:
        if value is None:
            return self.platform.name
        if isinstance(value, str):
            name = value.lower()
        elif isinstance(value, Mapping):
            driver = str(value.get("driver") or self.platform.driver).lower()
            network = str(value.get("network") or self.platform.network).lower()
            token = str(value.get("token") or PaymentPlatform(driver, network).token).lower()
            name = f"{driver}-{network}-{token}"
        else:
            raise BadRequest("paymentPlatform must be a string or an object")
        if name != self.platform.name:
            raise BadRequest(
                f"Payment platform {name} is not available on this node; use {self.platform.name}"
            )
        return name

    def _timeout_of(self, value: Any, now: datetime) -> datetime | None:
        if value in (None, ""):
            return None
        if not isinstance(value, str):
            raise BadRequest("timeout must be an RFC 3339 date-time")
        try:
            timeout = parse_timestamp(value)
        except ValueError as exc:
            raise BadRequest(f"timeout is not a usable RFC 3339 date-time: {exc}") from None
        if timeout <= now:
            raise BadRequest("Allocation timeout is in the past")
        return timeout

    def _schedule_release(self, allocation: Allocation, now: datetime) -> None:
        self._timers.cancel(allocation.timer)
        allocation.timer = None
        if allocation.timeout is not None:
            when = self.clock.deadline(allocation.timeout, now)
            allocation.timer = self._timers.call_at(when, self._expire_allocation, allocation)

    def _expire_allocation(self, allocation: Allocation) -> None:
        if not allocation.released:
            logger.info("allocation %s reached its timeout and was released", allocation.id)
            allocation.released = self.clock.now()

    def allocation(self, allocation_id: str) -> Allocation:
        allocation = self.allocations.get(allocation_id)
        if allocation is None:
            raise NotFound(f"Allocation {allocation_id} not found")
        if allocation.released:
            raise NotFound(f"Allocation {allocation_id} has been already released")
        return allocation

    def list_allocations(self) -> list[Allocation]:
        return [a for a in self.allocations.values() if not a.released]

    def amend_allocation(self, allocation_id: str, body: Mapping[str, Any]) -> Allocation:
        allocation = self.allocation(allocation_id)
        now = self.clock.now()
        total = allocation.total
        if body.get("totalAmount") is not None:
            total = parse_amount(body["totalAmount"], "totalAmount")
        if total < allocation.spent:
            raise BadRequest("New allocation would be smaller than the already spent amount")
        timeout = allocation.timeout
        if body.get("timeout") is not None:
            timeout = self._timeout_of(body["timeout"], now)
        others = sum(
            (
                a.remaining
                for a in self.allocations.values()
                if not a.released and a is not allocation
            ),
            Decimal(0),
        )
        if total - allocation.spent > self.balance - others:
            raise BadRequest("Insufficient funds to make allocation.")
        allocation.total = total
        allocation.timeout = timeout
        self._schedule_release(allocation, now)
        return allocation

    def release_allocation(self, allocation_id: str) -> None:
        allocation = self.allocations.get(allocation_id)
        if allocation is None:
            raise NotFound(f"Allocation {allocation_id} not found")
        if allocation.released:
            raise Gone(f"Allocation {allocation_id} has been already released")
        allocation.released = self.clock.now()
        self._timers.cancel(allocation.timer)
        allocation.timer = None

    def decorations(self, allocation_ids: Sequence[str]) -> dict[str, Any]:
        allocations = []
        for allocation_id in allocation_ids:
            allocation = self.allocations.get(allocation_id)
            if allocation is None or allocation.released:
                raise NotFound(f"Allocation {allocation_id} not found")
            allocations.append(allocation)
        properties = [
            {"key": f"golem.com.payment.platform.{a.platform}.address", "value": a.address}
            for a in allocations
        ]
        keys = sorted({item["key"] for item in properties})
        platform_clause = "(|" + "".join(f"({key}=*)" for key in keys) + ")"
        properties.append({"key": "golem.com.payment.protocol.version", "value": "3"})
        return {
            "properties": properties,
            "constraints": [platform_clause, "(golem.com.payment.protocol.version>1)"],
        }

    # ------------------------------------------------------------------ documents in
    def issue_debit_note(
        self,
        agreement_id: str,
        activity_id: str,
        issuer_id: str,
        amount: Decimal,
        usage: list[float],
        payment_timeout: float | None,
        session: str | None,
    ) -> DebitNote:
        now = self.clock.event_time()
        note = DebitNote(
            id=str(uuid.uuid4()),
            agreement_id=agreement_id,
            issuer_id=issuer_id,
            payee_addr=issuer_id,
            timestamp=now,
            amount=to_wei(amount),
            due=after(now, payment_timeout) if payment_timeout else None,
            session=session,
            activity_id=activity_id,
            previous_id=self._last_note.get(activity_id),
            usage=list(usage),
        )
        self._last_note[activity_id] = note.id
        self._agreement_of[activity_id] = agreement_id
        self.debit_notes[note.id] = note
        self._document_event(note, "Received", now)
        return note

    def issue_invoice(
        self,
        agreement_id: str,
        activity_ids: list[str],
        issuer_id: str,
        amount: Decimal,
        payment_timeout: float | None,
        session: str | None,
    ) -> Invoice:
        now = self.clock.event_time()
        due = after(now, payment_timeout or DEFAULT_INVOICE_DUE)
        invoice = Invoice(
            id=str(uuid.uuid4()),
            agreement_id=agreement_id,
            issuer_id=issuer_id,
            payee_addr=issuer_id,
            timestamp=now,
            amount=to_wei(amount),
            due=due,
            session=session,
            activity_ids=list(activity_ids),
        )
        self.invoices[invoice.id] = invoice
        self._invoice_of[agreement_id] = invoice.id
        self._document_event(invoice, "Received", now)
        return invoice

    @property
    def debit_note_events(self) -> EventLog:
        return self.events[DEBIT_NOTE]

    @property
    def invoice_events(self) -> EventLog:
        return self.events[INVOICE]

    def _document_event(
        self, document: Document, what: str, date: datetime | None = None, **extra: Any
    ) -> None:
        """``what`` happened to the document: ``Received``, ``Accepted``, ``Rejected``."""
        date = date or self.clock.event_time()
        kind = document.kind
        body = {
            "eventType": f"{kind.event}{what}Event",
            "eventDate": isoformat(date),
            kind.id_key: document.id,
            **extra,
        }
        self.events[kind].append(date, document.session, body)

    # ------------------------------------------------------------------ documents out
    def documents(self, kind: Kind) -> Mapping[str, Document]:
        return self.debit_notes if kind is DEBIT_NOTE else self.invoices

    def document(self, kind: Kind, document_id: str) -> Document:
        document = self.documents(kind).get(document_id)
        if document is None:
            raise NotFound(f"{kind.label} {document_id} not found")
        return document

    def document_json(self, document: Document) -> dict[str, Any]:
        return {
            "issuerId": document.issuer_id,
            "recipientId": self.requestor_id,
            "payeeAddr": document.payee_addr,
            "payerAddr": self.requestor_id,
            "paymentPlatform": self.platform.name,
            "timestamp": isoformat(document.timestamp),
            "agreementId": document.agreement_id,
            "status": document.status,
            document.kind.id_key: document.id,
            **document.own_json(),
        }

    def listed(self, kind: Kind, after: datetime | None, max_items: int) -> list[Document]:
        """The oldest ``max_items`` documents of a kind issued after ``after``."""
        chosen = [d for d in self.documents(kind).values() if after is None or d.timestamp > after]
        chosen.sort(key=lambda d: d.timestamp)
        return chosen[:max_items]

    # ------------------------------------------------------------------ acceptance
    def _paying_allocation(self, allocation_id: Any, needed: Decimal) -> Allocation:
        if not isinstance(allocation_id, str) or not allocation_id:
            raise BadRequest("allocationId is required")
        allocation = self.allocations.get(allocation_id)
        if allocation is None:
            raise BadRequest(f"Allocation {allocation_id} not found")
        if allocation.released:
            raise BadRequest(f"Allocation {allocation_id} has been already released")
        if needed > allocation.remaining:
            raise BadRequest(
                f"Not enough funds. Allocated: {amount_text(allocation.remaining)} "
                f"Needed: {amount_text(needed)}"
            )
        return allocation

    def accept(self, document: Document, body: Mapping[str, Any]) -> None:
        """Accept the exact amount; only what was not accepted before is spent."""
        if _already_accepted(document, body):
            return
        to_pay = self._to_pay(document)
        if to_pay is None:
            return  # the agreement's invoice already settled it
        allocation = self._paying_allocation(body.get("allocationId"), to_pay)
        self._spend(allocation, to_pay, document)
        if isinstance(document, DebitNote):
            before = self._accepted_activity.get(document.activity_id, Decimal(0))
            self._accepted_activity[document.activity_id] = max(before, document.amount)
        document.set_status("ACCEPTED", self.clock.now())
        self._document_event(document, "Accepted")

    def _to_pay(self, document: Document) -> Decimal | None:
        """What accepting a document spends: a debit note is cumulative per activity (and
        owes nothing once its agreement's invoice was accepted), an invoice is its
        agreement's final total."""
        if isinstance(document, DebitNote):
            invoice_id = self._invoice_of.get(document.agreement_id)
            if invoice_id is not None and self.invoices[invoice_id].status != "RECEIVED":
                return None
            before = self._accepted_activity.get(document.activity_id, Decimal(0))
            return max(Decimal(0), document.amount - before)
        before = self._accepted_agreement.get(document.agreement_id, Decimal(0))
        if document.amount < before:
            raise BadRequest(
                "Invoice is smaller than agreement.total_amount_accepted. "
                f"invoice_id={document.id}, invoice_amount={amount_text(document.amount)}, "
                f"total_amount_accepted={amount_text(before)}"
            )
        return document.amount - before

    def _spend(self, allocation: Allocation, amount: Decimal, document: Document) -> None:
        if amount <= 0:
            return
        allocation.spent += amount
        self.balance -= amount
        self._accepted_agreement[document.agreement_id] = (
            self._accepted_agreement.get(document.agreement_id, Decimal(0)) + amount
        )
        date = self.clock.event_time()
        # A debit note pays its activity, an invoice its agreement.
        paid = {"amount": amount_text(amount), "allocationId": allocation.id}
        payment = {
            "paymentId": str(uuid.uuid4()),
            "payerId": self.requestor_id,
            "payeeId": document.issuer_id,
            "payerAddr": self.requestor_id,
            "payeeAddr": document.payee_addr,
            "paymentPlatform": self.platform.name,
            "amount": amount_text(amount),
            "timestamp": isoformat(date),
            "agreementPayments": []
            if isinstance(document, DebitNote)
            else [{"agreementId": document.agreement_id, **paid}],
            "activityPayments": [{"activityId": document.activity_id, **paid}]
            if isinstance(document, DebitNote)
            else [],
            "details": "",
        }
        document.payments.append(payment)
        self.payments.append(date, document.session, payment)

    def reject(self, document: Document, body: Mapping[str, Any]) -> None:
        reason = body.get("rejectionReason")
        if reason not in REJECTION_REASONS:
            raise BadRequest(
                "rejectionReason must be one of " + ", ".join(sorted(REJECTION_REASONS))
            )
        parse_amount(body.get("totalAmountAccepted"), "totalAmountAccepted")
        message = body.get("message")
        if message is not None and not isinstance(message, str):
            raise BadRequest("message must be a string")
        if document.status in ("ACCEPTED", "SETTLED"):
            raise BadRequest("An accepted document cannot be rejected")
        if document.status == "REJECTED":
            return
        document.set_status("REJECTED", self.clock.now())
        rejection = {
            key: body[key]
            for key in ("rejectionReason", "totalAmountAccepted", "message")
            if key in body
        }
        self._document_event(document, "Rejected", rejection=rejection)
        self.on_rejected(document)

    # ------------------------------------------------------------------ memory
    def prune(
        self, retention: float, unsettled_retention: float, live: Callable[[str], bool]
    ) -> int:
        """Forget what no client can still need; returns how many objects went.

        Released allocations and settled documents go ``retention`` seconds after their
        last change; a document still waiting for the requestor goes ``unsettled_retention``
        seconds after it was issued, once its agreement (``live(agreement_id)``) has ended.
        Events older than ``retention`` go too (a client polling with an older
        ``afterTimestamp`` misses them).
        """
        now = self.clock.now()
        cutoff = now - timedelta(seconds=retention)
        unsettled_cutoff = now - timedelta(seconds=unsettled_retention)
        gone = 0
        for allocation in list(self.allocations.values()):
            if allocation.released is not None and allocation.released < cutoff:
                del self.allocations[allocation.id]
                gone += 1
        for documents in (self.debit_notes, self.invoices):
            for document in list(documents.values()):
                if document.settled:
                    old = (document.changed or document.timestamp) < cutoff
                else:
                    old = document.timestamp < unsettled_cutoff and not live(document.agreement_id)
                if old:
                    del documents[document.id]
                    gone += 1
        if gone:
            self._forget_orphans(live)
        for log in (self.debit_note_events, self.invoice_events, self.payments):
            gone += log.prune(cutoff)
        return gone

    def _forget_orphans(self, live: Callable[[str], bool]) -> None:
        """Drop bookkeeping of activities and agreements that have no document left and
        can get no new one. What was accepted for a live agreement stays even when its
        documents are gone: its next cumulative debit note, and its invoice, pay only
        their increase over it (as yagna keeps the agreement's accepted total)."""
        agreements = {d.agreement_id for d in self.debit_notes.values()} | {
            i.agreement_id for i in self.invoices.values()
        }
        agreements |= {a for a in set(self._agreement_of.values()) if live(a)}
        agreements |= {a for a in self._accepted_agreement if live(a)}
        activities = {note.activity_id for note in self.debit_notes.values()} | {
            activity
            for activity, agreement in self._agreement_of.items()
            if agreement in agreements
        }
        for mapping, keep in (
            (self._accepted_activity, activities),
            (self._last_note, activities),
            (self._agreement_of, activities),
            (self._accepted_agreement, agreements),
            (self._invoice_of, agreements),
        ):
            for key in [k for k in mapping if k not in keep]:
                del mapping[key]


def _already_accepted(document: Document, body: Mapping[str, Any]) -> bool:
    """yagna's checks before an acceptance: the exact amount, and a live document.
    True when it was accepted before (a repeated acceptance changes nothing)."""
    accepted = parse_amount(body.get("totalAmountAccepted"), "totalAmountAccepted")
    if accepted != document.amount:
        raise BadRequest("Invalid amount accepted")
    if document.status in ("ACCEPTED", "SETTLED"):
        return True
    if document.status == "CANCELLED":
        raise BadRequest(f"{document.kind.label} cancelled")
    return False
