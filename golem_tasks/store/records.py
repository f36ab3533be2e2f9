"""Typed records of the run's rows, and their statuses as enums whose values are the SQL's."""

from __future__ import annotations

import sys
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from golem_tasks.db.types import Row

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:  # pragma: no cover - Python 3.10

    class StrEnum(str, Enum):
        def __str__(self) -> str:
            return str(self.value)


class RunStatus(StrEnum):
    RUNNING = "running"
    STOPPING = "stopping"
    FINISHED = "finished"
    FAILED = "failed"
    STOPPED = "stopped"

    @property
    def ended(self) -> bool:
        return self in (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.STOPPED)


class TaskStatus(StrEnum):
    PENDING = "pending"
    CLAIMED = "claimed"
    DONE = "done"
    FAILED = "failed"


class AgreementStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    TERMINATED = "terminated"


class ActivityStatus(StrEnum):
    NEW = "new"
    DEPLOYING = "deploying"
    READY = "ready"
    #: Ended, its provider not to blame.
    STOPPED = "stopped"
    #: Ended for its provider's fault: the provider is not hired again in this run.
    FAILED = "failed"

    @property
    def ended(self) -> bool:
        return self in (ActivityStatus.STOPPED, ActivityStatus.FAILED)


def _columns(cls: type, row: Row, **typed: Any) -> dict[str, Any]:
    """The fields of a record from a ``SELECT *`` row: only the columns the record names (a
    later migration may add others), with ``typed`` ones replaced."""
    return {f.name: typed[f.name] if f.name in typed else row[f.name] for f in fields(cls)}


@dataclass(frozen=True)
class Run:
    """A run: the options of the command that (last) started it, and where it stands."""

    id: str
    app: str
    status: RunStatus
    stop_reason: str | None
    workers: int
    budget_per_hour: Decimal
    max_price: Decimal | None
    subnet: str
    payment_platform: str
    settings: dict[str, Any]
    queue: str
    feed_done: bool
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    supervisor: str | None
    supervisor_seen_at: datetime | None
    requestor_id: str | None

    @classmethod
    def from_row(cls, row: Row) -> Run:
        return cls(**_columns(cls, row, status=RunStatus(row["status"])))


@dataclass(frozen=True)
class Agreement:
    """An agreement with one provider, for one run."""

    id: str
    run_id: str
    proposal_id: str | None
    provider_id: str
    provider_name: str | None
    status: AgreementStatus
    created_at: datetime
    approved_at: datetime | None
    expires_at: datetime | None
    terminated_at: datetime | None
    terminate_reason: str | None
    #: Why its provider is not hired again in this run.
    avoid_reason: str | None
    #: The procrastinate job driving it.
    job_id: int | None

    @classmethod
    def from_row(cls, row: Row) -> Agreement:
        return cls(**_columns(cls, row, status=AgreementStatus(row["status"])))


@dataclass(frozen=True)
class Activity:
    """An activity on an agreement, driven by one worker at a time."""

    id: str
    run_id: str
    agreement_id: str
    status: ActivityStatus
    #: host:pid of the worker driving it (the last one, once it ended).
    worker: str | None
    heartbeat_at: datetime | None
    #: Why the supervisor wants it stopped.
    stop_request: str | None
    stop_reason: str | None
    created_at: datetime
    ready_at: datetime | None
    stopped_at: datetime | None

    @classmethod
    def from_row(cls, row: Row) -> Activity:
        return cls(**_columns(cls, row, status=ActivityStatus(row["status"])))


@dataclass(frozen=True)
class LiveAgreement:
    """An agreement that holds (or is about to hold) a provider, with its latest activity."""

    agreement: Agreement
    activity_id: str | None
    activity_status: ActivityStatus | None
    activity_stop_reason: str | None

    @classmethod
    def from_row(cls, row: Row) -> LiveAgreement:
        status = row["activity_status"]
        return cls(
            Agreement.from_row(row),
            row["activity_id"],
            ActivityStatus(status) if status is not None else None,
            row["activity_stop_reason"],
        )


class ProposalDecision(StrEnum):
    """What became of a provider's proposal."""

    COUNTERED = "countered"
    REJECTED = "rejected"
    AGREED = "agreed"
    EXPIRED = "expired"
