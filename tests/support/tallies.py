"""The run's tallies (migration 0009) against a direct count of the rows they summarise.

Every kind of tally row is recomputed from tasks.task, tasks.batch, tasks.debit_note and
tasks.invoice in one snapshot; any difference is a problem the views would show.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

# Test-only SQL: the tallies as they are, and the same figures counted from the rows.
TALLIED = """
SELECT kind, key, status, at::text AS at, sum(n) AS n, sum(amount) AS amount
FROM tasks.tally_now
WHERE run_id = %(run_id)s GROUP BY kind, key, status, at
HAVING sum(n) <> 0 OR sum(amount) <> 0
"""
COUNTED = """
SELECT 'tasks' AS kind, '' AS key, '' AS status, '-infinity' AS at, count(*) AS n, 0 AS amount
FROM tasks.task WHERE run_id = %(run_id)s HAVING count(*) > 0
UNION ALL
SELECT 'follow_up', '', '', '-infinity', count(*), 0 FROM tasks.task
WHERE run_id = %(run_id)s AND parent_id IS NOT NULL HAVING count(*) > 0
UNION ALL
SELECT 'done', coalesce(activity_id, ''), '', '-infinity', count(*),
       coalesce(sum(extract(epoch FROM finished_at - claimed_at)), 0)
FROM tasks.task WHERE run_id = %(run_id)s AND status = 'done' GROUP BY 2
UNION ALL
SELECT 'batch', '', '', '-infinity', count(*), 0 FROM tasks.batch
WHERE run_id = %(run_id)s HAVING count(*) > 0
UNION ALL
SELECT 'done_at', '', '', date_trunc('second', finished_at)::text, count(*), 0 FROM tasks.task
WHERE run_id = %(run_id)s AND status = 'done' GROUP BY date_trunc('second', finished_at)
UNION ALL
SELECT 'document', agreement_id, 'debit_note:' || status, '-infinity', count(*), sum(increment)
FROM tasks.debit_note WHERE run_id = %(run_id)s GROUP BY 2, 3
UNION ALL
SELECT 'document', agreement_id, 'invoice:' || status, '-infinity', count(*), sum(increment)
FROM tasks.invoice WHERE run_id = %(run_id)s GROUP BY 2, 3
UNION ALL
SELECT 'spend_at', '', '', at::text, count(*), sum(increment) FROM (
    SELECT date_trunc('second', decided_at) AS at, increment FROM tasks.debit_note
    WHERE run_id = %(run_id)s AND status = 'accepted'
    UNION ALL
    SELECT date_trunc('second', decided_at), increment FROM tasks.invoice
    WHERE run_id = %(run_id)s AND status = 'accepted') AS accepted
GROUP BY at
"""


def _keyed(rows: list[dict[str, Any]]) -> dict[tuple[Any, ...], tuple[int, Any]]:
    return {
        (r["kind"], r["key"], r["status"], r["at"]): (int(r["n"]), r["amount"].normalize())
        for r in rows
    }


async def tally_mismatches(dsn: str, run_id: str) -> list[str]:
    """Where the tallies of ``run_id`` differ from the rows (empty when they agree)."""
    connect = psycopg.AsyncConnection.connect(dsn, row_factory=dict_row)
    async with await connect as conn, conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        tallied = _keyed(await (await conn.execute(TALLIED, {"run_id": run_id})).fetchall())
        counted = _keyed(await (await conn.execute(COUNTED, {"run_id": run_id})).fetchall())
    return [
        f"tally {key}: {tallied.get(key)} but the rows say {counted.get(key)}"
        for key in sorted(tallied.keys() | counted.keys(), key=str)
        if tallied.get(key) != counted.get(key)
    ]


async def folded_share(dsn: str, run_id: str) -> tuple[int, int]:
    """(tally rows, delta rows not folded yet) of ``run_id``."""
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        row = await (
            await conn.execute(
                "SELECT (SELECT count(*) FROM tasks.tally WHERE run_id = %(r)s),"
                " (SELECT count(*) FROM tasks.tally_delta WHERE run_id = %(r)s)",
                {"r": run_id},
            )
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])
