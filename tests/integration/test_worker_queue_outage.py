"""A worker's own job-queue calls ride out a statement cut by a restarting database.

Found by the PostgreSQL outage smoke: a worker fetching its next job at the moment the
server shut down died with ConnectorException (procrastinate lets a failed fetch end the
worker, a failed heartbeat stop it), dropping the activities it drove. Here the server
itself answers "terminating connection due to administrator command" (SQLSTATE 57P01,
what a shutdown sends) to the first calls, so the race is hit every time.
"""

from __future__ import annotations

import psycopg
import pytest

from golem_tasks import queue
from workers.app import create_app

pytestmark = pytest.mark.timeout(60)

FAILURES = 2

#: The real function renamed, and one in its place that fails like a shutdown first.
FAULTY = """
CREATE SEQUENCE procrastinate.fault_{name};
ALTER FUNCTION procrastinate.{name}({args}) RENAME TO {name}_real;
CREATE FUNCTION procrastinate.{name}({params}) RETURNS {returns} LANGUAGE plpgsql AS $$
BEGIN
    IF nextval('procrastinate.fault_{name}') <= {failures} THEN
        RAISE EXCEPTION 'terminating connection due to administrator command'
            USING ERRCODE = 'admin_shutdown';
    END IF;
    RETURN {body};
END $$;
"""


def make_faulty(dsn: str) -> None:
    fetch = FAULTY.format(
        name="procrastinate_fetch_job_v2",
        args="character varying[], bigint",
        params="queues character varying[], worker bigint",
        returns="procrastinate.procrastinate_jobs",
        failures=FAILURES,
        body="procrastinate.procrastinate_fetch_job_v2_real(queues, worker)",
    )
    heartbeat = FAULTY.format(
        name="procrastinate_update_heartbeat_v1",
        args="bigint",
        params="worker bigint",
        returns="void",
        failures=FAILURES,
        body="procrastinate.procrastinate_update_heartbeat_v1_real(worker)",
    ).replace("RETURN procrastinate.", "PERFORM procrastinate.")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(fetch)
        conn.execute(heartbeat)


async def test_fetching_a_job_and_the_heartbeat_wait_out_a_shutdown(installed_dsn: str) -> None:
    make_faulty(installed_dsn)
    app = create_app(installed_dsn)
    async with app.open_async():
        job_id = await queue.defer_drive(app, queue="q", run_id="r", agreement_id="a")
        worker_id = await app.job_manager.register_worker()

        job = await app.job_manager.fetch_job(["q"], worker_id)
        await app.job_manager.update_heartbeat(worker_id)

    assert job is not None and job.id == job_id
    with psycopg.connect(installed_dsn) as conn:
        [calls] = conn.execute(
            "SELECT last_value FROM procrastinate.fault_procrastinate_fetch_job_v2"
        ).fetchone() or [None]
        [status] = conn.execute(
            "SELECT status FROM procrastinate.procrastinate_jobs WHERE id = %s", [job_id]
        ).fetchone() or [None]
    # Two refused fetches and the one that took the job: every call reached the server.
    assert calls == FAILURES + 1
    assert status == "doing"
