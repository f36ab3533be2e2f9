"""Agreements, and the market side that leads to them: demands and proposals; and the jobs
that drive agreements."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from golem_tasks.db import access
from golem_tasks.db.types import Connection
from golem_tasks.store.records import Agreement, LiveAgreement, ProposalDecision


async def insert_demand(
    conn: Connection,
    *,
    id: str,
    run_id: str,
    properties: dict[str, Any],
    constraints: str,
    expires_at: datetime,
) -> None:
    await access.execute(
        conn,
        "insert_demand",
        id=id,
        run_id=run_id,
        properties=properties,
        constraints=constraints,
        expires_at=expires_at,
    )


async def demand_unsubscribed(conn: Connection, demand_id: str) -> None:
    await access.execute(conn, "mark_demand_unsubscribed", id=demand_id)


async def subscribed_demands(conn: Connection, run_id: str) -> list[str]:
    """Ids of the run's demands still subscribed (as far as the database knows)."""
    return [row["id"] for row in await access.all_rows(conn, "subscribed_demands", run_id=run_id)]


async def insert_proposal(
    conn: Connection,
    *,
    id: str,
    run_id: str,
    demand_id: str,
    parent_id: str | None,
    issuer: str,
    provider_id: str | None,
    provider_name: str | None,
    properties: dict[str, Any],
    constraints: str,
    price_start: Decimal | None,
    price_cpu_sec: Decimal | None,
    price_env_sec: Decimal | None,
    score: Decimal | None,
    decision: ProposalDecision | None,
    decision_reason: str | None,
) -> None:
    """A proposal, ours or a provider's (stored once)."""
    await access.execute(
        conn,
        "insert_proposal",
        id=id,
        run_id=run_id,
        demand_id=demand_id,
        parent_id=parent_id,
        issuer=issuer,
        provider_id=provider_id,
        provider_name=provider_name,
        properties=properties,
        constraints=constraints,
        price_start=price_start,
        price_cpu_sec=price_cpu_sec,
        price_env_sec=price_env_sec,
        score=score,
        decision=decision.value if decision is not None else None,
        decision_reason=decision_reason,
    )


async def decide_proposal(
    conn: Connection, proposal_id: str, decision: ProposalDecision, reason: str | None
) -> None:
    await access.execute(
        conn, "set_proposal_decision", id=proposal_id, decision=decision.value, reason=reason
    )


async def insert(
    conn: Connection,
    *,
    id: str,
    run_id: str,
    proposal_id: str,
    provider_id: str,
    provider_name: str | None,
    expires_at: datetime | None,
) -> None:
    await access.execute(
        conn,
        "insert_agreement",
        id=id,
        run_id=run_id,
        proposal_id=proposal_id,
        provider_id=provider_id,
        provider_name=provider_name,
        expires_at=expires_at,
    )


async def approve(conn: Connection, agreement_id: str) -> None:
    """A pending agreement the provider approved."""
    await access.execute(conn, "approve_agreement", id=agreement_id)


async def reject(conn: Connection, agreement_id: str, reason: str) -> None:
    """A pending agreement the provider rejected: its provider is not hired again."""
    await access.execute(conn, "reject_agreement", id=agreement_id, reason=reason)


async def request_end(conn: Connection, agreement_id: str, reason: str, *, avoid: bool) -> None:
    """Anyone who learns that an agreement is over says why; the supervisor then
    terminates it. With ``avoid`` its provider is not hired again in this run."""
    await access.execute(conn, "request_agreement_end", id=agreement_id, reason=reason, avoid=avoid)


async def avoid_provider_of(conn: Connection, agreement_id: str, reason: str) -> None:
    """The agreement's provider is not hired again in this run (also once it ended)."""
    await access.execute(conn, "avoid_provider_of", id=agreement_id, reason=reason)


async def terminated(conn: Connection, agreement_id: str, reason: str) -> None:
    await access.execute(conn, "mark_agreement_terminated", id=agreement_id, reason=reason)


async def set_job(conn: Connection, agreement_id: str, job_id: int) -> None:
    """The procrastinate job that drives the agreement."""
    await access.execute(conn, "set_agreement_job", id=agreement_id, job_id=job_id)


async def get(conn: Connection, agreement_id: str) -> Agreement | None:
    row = await access.one(conn, "get_agreement", id=agreement_id)
    return Agreement.from_row(row) if row is not None else None


async def live(conn: Connection, run_id: str) -> list[LiveAgreement]:
    """Agreements that hold (or are about to hold) a provider for the run, oldest first."""
    rows = await access.all_rows(conn, "live_agreements", run_id=run_id)
    return [LiveAgreement.from_row(row) for row in rows]


async def avoided_providers(conn: Connection, run_id: str) -> set[str]:
    """Providers not hired again in this run."""
    return {
        row["provider_id"]
        for row in await access.all_rows(conn, "avoided_providers", run_id=run_id)
    }


async def without_invoice(conn: Connection, run_id: str) -> list[str]:
    """Approved agreements of the run that ended and whose invoice has not come."""
    rows = await access.all_rows(conn, "agreement_ids_without_invoice", run_id=run_id)
    return [row["id"] for row in rows]


async def run_ids(conn: Connection, run_id: str) -> set[str]:
    return {row["id"] for row in await access.all_rows(conn, "run_agreement_ids", run_id=run_id)}


async def job_statuses(conn: Connection, job_ids: list[int]) -> dict[int, str]:
    """The procrastinate status of the jobs of many agreements in one query; a job that is
    not in the answer has ended and been deleted."""
    rows = await access.all_rows(conn, "job_statuses", ids=job_ids)
    return {row["id"]: row["status"] for row in rows}
