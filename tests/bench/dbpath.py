"""The database path alone: claimers that claim and complete tasks with no Golem calls,
and pgbench running the very same statement, for PostgreSQL's own limit on this machine.

Each claimer is one connection doing what a driver does per task: one ``claim_task``
statement that stores the previous result and claims the next task.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from golem_tasks.db.connect import connect, connection, open_pool
from golem_tasks.db.queries import queries
from golem_tasks.store import tasks as taskstore
from golem_tasks.store.tasks import ClaimRequest, NewTask
from tests.helpers import make_run
from workers.claims import ClaimBatcher

PGBENCH = Path(__file__).resolve().parents[2] / ".venv/lib/python3.11/site-packages"
FEED_CHUNK = 5000


@dataclass(frozen=True)
class DbPath:
    tasks: int
    seconds: float
    claim_p50_ms: float
    claim_p99_ms: float

    @property
    def per_second(self) -> float:
        return self.tasks / self.seconds


async def _feed(dsn: str, run_id: str, count: int) -> None:
    async with connection(dsn, autocommit=True) as conn:
        for start in range(0, count, FEED_CHUNK):
            batch = [
                NewTask(str(n), n, {"n": n}) for n in range(start, min(count, start + FEED_CHUNK))
            ]
            await taskstore.feed(conn, run_id, batch, max_attempts=3, timeout_s=None)


async def claim_and_complete(
    dsn: str, *, tasks: int, claimers: int = 8, batched: bool = True
) -> DbPath:
    """``claimers`` drivers claim and complete ``tasks`` tasks as fast as they can: through
    one worker process's :class:`ClaimBatcher` (as drivers do), or each on its own
    connection with a statement per task (``batched=False``)."""
    prefix = "db" if batched else "dbsingle"
    run_id = f"{prefix}path"
    activities = await make_run(dsn, run_id=run_id, activities=claimers, prefix=prefix)
    await _feed(dsn, run_id, tasks)
    latencies: list[float] = []
    done = [0]
    pool = await open_pool(dsn, max_size=claimers + 2)
    batcher = ClaimBatcher(pool, taskstore.DEFAULT_LEASE_S)

    async def claimer(activity_id: str) -> None:
        conn = await connect(dsn, autocommit=True)
        async with conn:
            claim: taskstore.Claim | None = None
            first = True
            while first or claim is not None:
                result = claim.data["n"] * 7 if claim else None
                request = ClaimRequest(activity_id, claim, result)
                started = time.perf_counter()
                if batched:
                    stored, claim = await batcher.submit(run_id, request)
                else:
                    [(stored, claim)] = await taskstore.claim_many(conn, run_id, [request])
                latencies.append(time.perf_counter() - started)
                done[0] += stored
                first = False

    started = time.perf_counter()
    try:
        await asyncio.gather(*(claimer(a) for a in activities))
    finally:
        await pool.close()
    elapsed = time.perf_counter() - started
    assert done[0] == tasks, f"{done[0]} of {tasks} completed"
    latencies.sort()
    return DbPath(
        tasks,
        elapsed,
        latencies[len(latencies) // 2] * 1000,
        latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
    )


def pgbench_script() -> str:
    """``claim_task`` with pgbench variables: each transaction completes the client's
    previous task and claims its next one, as one unbatched driver does."""
    values = {
        "run_id": "'pgbench'",
        "activity_ids": "ARRAY['pgact' || :client_id]",
        "lease_s": "30",
        "task_ids": "ARRAY[:id]",
        "attempts": "ARRAY[:attempts]",
        "results": "ARRAY['7'::jsonb]",
        "claim_next": "ARRAY[true]",
        "batch_task_ids": "'{}'",
        "batch_ids": "'{}'",
    }
    sql = re.sub(r"%\((\w+)\)s", lambda m: values[m[1]], queries.claim_task)
    # \gset takes one row: the claim (the statement also lists the stored result).
    sql = sql[: sql.index("SELECT 'done' AS kind")] + "SELECT id, attempts FROM claimed"
    sql = sql.replace(
        "SELECT (SELECT count(*) FROM done) AS completed, claimed.*", "SELECT claimed.*"
    )
    return " ".join(sql.split()) + " \\gset\n"


def pgbench_binary() -> Path:
    return next(PGBENCH.glob("pgserver/pginstall/bin/pgbench"))


async def pgbench(dsn: str, directory: Path, *, tasks: int, clients: int = 8) -> DbPath:
    """pgbench running :func:`pgbench_script` on ``clients`` connections (activities
    pgact0, pgact1, ... after pgbench's client ids)."""
    await make_run(dsn, run_id="pgbench", activities=clients, prefix="pg")
    await _feed(dsn, "pgbench", tasks + clients)
    script = directory / "claim.sql"
    script.write_text(pgbench_script())
    per_client = tasks // clients
    args = [str(pgbench_binary()), "-n", "-M", "prepared", "-f", str(script)]
    args += ["-c", str(clients), "-j", "2", "-t", str(per_client), "-D", "id=0", "-D"]
    args += ["attempts=0", "-r", dsn]
    result = await asyncio.to_thread(
        subprocess.run, args, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr + result.stdout
    found_tps = re.search(r"tps = ([\d.]+)", result.stdout)
    found_latency = re.search(r"latency average = ([\d.]+) ms", result.stdout)
    assert found_tps and found_latency, result.stdout
    tps, latency = float(found_tps[1]), float(found_latency[1])
    done = per_client * clients
    return DbPath(done, done / tps, latency, float("nan"))
