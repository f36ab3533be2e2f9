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

from golem_tasks import taskstore
from golem_tasks.db.connect import connect, connection
from golem_tasks.db.queries import queries
from golem_tasks.taskstore import NewTask
from tests.helpers import make_run

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


async def claim_and_complete(dsn: str, *, tasks: int, claimers: int = 8) -> DbPath:
    """``claimers`` connections claim and complete ``tasks`` tasks as fast as they can."""
    activities = await make_run(dsn, run_id="dbpath", activities=claimers, prefix="db")
    await _feed(dsn, "dbpath", tasks)
    latencies: list[float] = []
    done = [0]

    async def claimer(activity_id: str) -> None:
        conn = await connect(dsn, autocommit=True)
        async with conn:
            started = time.perf_counter()
            claim = await taskstore.claim(conn, "dbpath", activity_id)
            latencies.append(time.perf_counter() - started)
            while claim is not None:
                started = time.perf_counter()
                stored, claim = await taskstore.complete_and_claim(conn, claim, claim.data["n"] * 7)
                latencies.append(time.perf_counter() - started)
                done[0] += stored

    started = time.perf_counter()
    await asyncio.gather(*(claimer(a) for a in activities))
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
    previous task and claims its next one, exactly as a driver does."""
    values = {
        "run_id": "'pgbench'",
        "activity_id": "'pgact' || :client_id",
        "lease_s": "30",
        "task_id": ":id",
        "attempt": ":attempts",
        "result": "'7'::jsonb",
        "batch_ids": "'{}'",
        "claim_next": "true",
    }
    sql = re.sub(r"%\((\w+)\)s", lambda m: values[m[1]], queries.claim_task)
    # Drop the first column so that \gset sets only id, attempts, ... of the claim.
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
    tps = float(re.search(r"tps = ([\d.]+)", result.stdout)[1])  # type: ignore[index]
    latency = float(re.search(r"latency average = ([\d.]+) ms", result.stdout)[1])  # type: ignore[index]
    done = per_client * clients
    return DbPath(done, done / tps, latency, float("nan"))
