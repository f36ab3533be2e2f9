"""The store's records against the real schema: enum values are the SQL's, rows load."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from enum import Enum

import pytest

from golem_tasks.db.connect import connection
from golem_tasks.store import agreements, runs
from golem_tasks.store.ledger import Verdict
from golem_tasks.store.records import (
    ActivityStatus,
    AgreementStatus,
    ProposalDecision,
    RunStatus,
    TaskStatus,
)
from tests.helpers import make_run


async def allowed(dsn: str, table: str, column: str) -> set[str]:
    """The values the CHECK constraint on ``tasks.table.column`` allows."""
    async with connection(dsn, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT pg_get_constraintdef(oid) AS check FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype = 'c'",
            (f"tasks.{table}",),
        )
        checks = [row["check"] for row in await cur.fetchall()]
    [check] = [c for c in checks if re.search(rf"\b{column}\b", c) and "ANY" in c]
    return set(re.findall(r"'([a-z_]+)'::text", check))


@pytest.mark.parametrize(
    ("table", "column", "enum"),
    [
        ("run", "status", RunStatus),
        ("agreement", "status", AgreementStatus),
        ("activity", "status", ActivityStatus),
        ("task", "status", TaskStatus),
        ("proposal", "decision", ProposalDecision),
    ],
)
async def test_enum_values_are_what_the_schema_allows(
    installed_dsn: str, table: str, column: str, enum: type[Enum]
) -> None:
    assert {member.value for member in enum} == await allowed(installed_dsn, table, column)


async def test_verdicts_are_stored_statuses_of_documents(installed_dsn: str) -> None:
    values = {verdict.value for verdict in Verdict}
    assert values <= await allowed(installed_dsn, "debit_note", "status")
    assert values <= await allowed(installed_dsn, "invoice", "status")


async def test_records_load_from_rows_and_read_as_their_sql_values(installed_dsn: str) -> None:
    a, _ = await make_run(installed_dsn)
    async with connection(installed_dsn, autocommit=True) as conn:
        run = await runs.get(conn, "r1")
        [live] = [row for row in await agreements.live(conn, "r1") if row.activity_id == a]
        agreement = await agreements.get(conn, live.agreement.id)
    assert run is not None and agreement is not None
    assert run.status is RunStatus.RUNNING and isinstance(run.budget_per_hour, Decimal)
    assert live.agreement == agreement and agreement.status is AgreementStatus.PENDING
    assert live.activity_status is ActivityStatus.NEW
    # A status reads as the text stored, in logs and JSON alike.
    assert f"{run.status}" == "running" and json.dumps(run.status) == '"running"'
