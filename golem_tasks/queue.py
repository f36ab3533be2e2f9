"""The procrastinate queue that carries "drive this activity" jobs from supervisor to workers.

procrastinate's tables live in their own PostgreSQL schema (see ``db.migrate``); its
connections reach them through ``search_path``. The supervisor defers jobs by name, so it
does not import the worker code that runs them.
"""

from __future__ import annotations

import hashlib
import logging

import procrastinate
import psycopg.conninfo
from procrastinate.jobs import Status

from golem_tasks.config import with_tcp_liveness
from golem_tasks.db.connect import RestartTolerantPool
from golem_tasks.db.migrate import PROCRASTINATE_SCHEMA
from golem_tasks.retry import DB_PATIENCE_S

logger = logging.getLogger(__name__)

#: The job that drives one activity on one agreement.
DRIVE_JOB = "golem_tasks.drive_activity"
#: The prefix of the queue of every supervised run (see :func:`requestor_queue`).
DEFAULT_QUEUE = "golem-tasks"
#: Jobs whose worker has not sent a heartbeat for this long are stalled (worker died).
STALLED_AFTER_S = 30.0
WORKER_HEARTBEAT_S = 2.0

LIVE_STATUSES = frozenset({Status.TODO, Status.DOING})


#: procrastinate notifies workers on the channel ``procrastinate_queue_v1#<queue>``, and
#: PostgreSQL refuses channel names over 63 bytes: a longer queue name makes every defer fail.
MAX_QUEUE_NAME_BYTES = 63 - len("procrastinate_queue_v1#")
_LOCAL_PREFIX = f"{DEFAULT_QUEUE}-local-"


def requestor_queue(requestor_id: str) -> str:
    """The queue of supervised runs whose requestor node is ``requestor_id``: only workers
    whose yagna is that node listen on it, so no other worker ever takes their jobs.

    A node id too long for a queue name keeps its readable start and a hash of the whole.
    """
    name = f"{DEFAULT_QUEUE}@{requestor_id}"
    if len(name.encode()) <= MAX_QUEUE_NAME_BYTES:
        return name
    digest = hashlib.sha256(requestor_id.encode()).hexdigest()[:8]
    return f"{name[: MAX_QUEUE_NAME_BYTES - 9]}~{digest}"


def is_local_queue(name: str) -> bool:
    return name.startswith(_LOCAL_PREFIX)


def local_queue(run_id: str) -> str:
    """The queue of a run whose tasks only its own `golem-tasks run` process can execute.

    Short run ids keep their readable name; a longer one is named by its digest so that
    the name always fits procrastinate's limit.
    """
    name = f"{_LOCAL_PREFIX}{run_id}"
    if len(name.encode()) <= MAX_QUEUE_NAME_BYTES:
        return name
    room = MAX_QUEUE_NAME_BYTES - len(_LOCAL_PREFIX)
    return _LOCAL_PREFIX + hashlib.sha256(run_id.encode()).hexdigest()[:room]


def _with_search_path(dsn: str) -> str:
    params = psycopg.conninfo.conninfo_to_dict(with_tcp_liveness(dsn))
    options = str(params.get("options") or "")
    params["options"] = f"{options} -c search_path={PROCRASTINATE_SCHEMA}".strip()
    return psycopg.conninfo.make_conninfo("", **params)


def make_app(dsn: str, *, max_pool_size: int = 10) -> procrastinate.App:
    """A procrastinate App on ``dsn`` (not opened)."""
    connector = procrastinate.PsycopgConnector(
        conninfo=_with_search_path(dsn),
        min_size=1,
        max_size=max_pool_size,
        # A database that restarts: procrastinate replaces dead connections before use;
        # with this a caller also waits for a new one (while the server is away) instead
        # of failing, so that the worker loop and its heartbeats ride out the outage.
        timeout=DB_PATIENCE_S,
        pool_factory=RestartTolerantPool,
    )
    return procrastinate.App(connector=connector)


async def defer_drive(
    app: procrastinate.App, *, queue: str, run_id: str, agreement_id: str
) -> int | None:
    """Ask for one job to drive the agreement's activity; at most one runs at a time.

    Returns the id of the job now queued for it (a new one, or the one already waiting).
    """
    lock = f"agreement:{agreement_id}"
    deferrer = app.configure_task(DRIVE_JOB, queue=queue, lock=lock, queueing_lock=lock)
    try:
        return await deferrer.defer_async(run_id=run_id, agreement_id=agreement_id)
    except procrastinate.exceptions.AlreadyEnqueued:
        waiting = await app.job_manager.list_jobs_async(queueing_lock=lock, status="todo")
        return next((job.id for job in waiting), None)


async def retry_stalled(app: procrastinate.App) -> list[int]:
    """Put back jobs whose worker died, so that another worker picks them up (any run's:
    whichever supervisor sees a dead worker first puts its jobs back)."""
    stalled = await app.job_manager.get_stalled_jobs(
        task_name=DRIVE_JOB, seconds_since_heartbeat=STALLED_AFTER_S
    )
    retried = []
    for job in stalled:
        assert job.id is not None
        logger.warning("job %s stalled (its worker stopped); retrying it", job.id)
        try:
            await app.job_manager.retry_job(job)
        except procrastinate.exceptions.ProcrastinateException as exc:
            logger.info("job %s could not be retried (it just ended?): %s", job.id, exc)
            continue
        retried.append(job.id)
    if retried:
        await app.job_manager.prune_stalled_workers(STALLED_AFTER_S)
    return retried
