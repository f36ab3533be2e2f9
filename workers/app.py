"""The procrastinate app of the workers and how a worker process runs it."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import procrastinate
from procrastinate import exceptions, jobs
from procrastinate.manager import JobManager
from procrastinate.worker import Worker

from golem_tasks import queue
from golem_tasks.errors import UserError
from golem_tasks.retry import is_transient, patiently
from golem_tasks.store import tasks
from workers.context import WorkerContext
from workers.driver import drive_agreement

logger = logging.getLogger(__name__)

#: Jobs still running this long after a stop signal are aborted (their activities are
#: kept for the next worker, their claims given back).
GRACEFUL_STOP_S = 5.0

T = TypeVar("T")


def _database_away(exc: BaseException) -> bool:
    """procrastinate wraps every database failure in a ConnectorException; its cause
    says whether the database was only away (restarting, connection cut)."""
    return isinstance(exc, exceptions.ConnectorException) and is_transient(exc.__cause__ or exc)


class PatientJobManager(JobManager):
    """The calls a procrastinate worker loop makes on its own (fetch the next job, beat
    its heartbeat, record how a job ended) wait out a database that restarts.

    The pool already waits for a connection while the server is away; but a statement
    that was running when the server went down fails, and procrastinate lets that
    failure end the whole worker process (fetch) or stop it (heartbeat), dropping the
    activities it drives. A failed statement changed nothing (its transaction is rolled
    back), so running it again is safe.
    """

    async def _patiently(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        return await patiently(call, what=f"job queue: {what}", transient=_database_away)

    async def fetch_job(self, queues: Iterable[str] | None, worker_id: int) -> jobs.Job | None:
        return await self._patiently(
            "fetching a job", lambda: super(PatientJobManager, self).fetch_job(queues, worker_id)
        )

    async def update_heartbeat(self, worker_id: int) -> None:
        await self._patiently(
            "worker heartbeat", lambda: super(PatientJobManager, self).update_heartbeat(worker_id)
        )

    async def finish_job(self, *args: Any, **kwargs: Any) -> None:
        await self._patiently(
            "recording a job's end",
            lambda: super(PatientJobManager, self).finish_job(*args, **kwargs),
        )

    async def retry_job(self, *args: Any, **kwargs: Any) -> None:
        await self._patiently(
            "scheduling a job's retry",
            lambda: super(PatientJobManager, self).retry_job(*args, **kwargs),
        )

    async def list_jobs_to_abort_async(self, queue: str | None = None) -> Iterable[int]:
        return await self._patiently(
            "listing jobs to abort",
            lambda: super(PatientJobManager, self).list_jobs_to_abort_async(queue),
        )


def create_app(dsn: str, *, pool_size: int = 4) -> procrastinate.App:
    """The queue app with the "drive an activity" job registered."""
    app = queue.make_app(dsn, max_pool_size=pool_size)
    app.job_manager = PatientJobManager(app.connector)

    @app.task(name=queue.DRIVE_JOB, pass_context=True)
    async def drive_activity(
        context: procrastinate.JobContext, run_id: str, agreement_id: str
    ) -> None:
        ctx: WorkerContext = context.additional_context["golem_tasks"]
        await drive_agreement(ctx, run_id, agreement_id)

    return app


def make_worker(
    app: procrastinate.App,
    ctx: WorkerContext,
    *,
    queues: Sequence[str],
    concurrency: int,
    install_signal_handlers: bool,
) -> Worker:
    return Worker(
        app,
        queues=list(queues),
        name=ctx.name,
        concurrency=concurrency,
        additional_context={"golem_tasks": ctx},
        install_signal_handlers=install_signal_handlers,
        shutdown_graceful_timeout=GRACEFUL_STOP_S,
        update_heartbeat_interval=queue.WORKER_HEARTBEAT_S,
        stalled_worker_timeout=queue.STALLED_AFTER_S,
        fetch_job_polling_interval=1.0,
        delete_jobs="successful",
    )


async def run_worker(
    dsn: str,
    *,
    queues: Sequence[str] = (),
    concurrency: int = 20,
    ctx: WorkerContext | None = None,
    install_signal_handlers: bool = True,
    lease_s: float = tasks.DEFAULT_LEASE_S,
) -> None:
    """Run one worker process until it is stopped (SIGINT/SIGTERM).

    Without ``queues`` it takes the jobs of every supervised run of its own yagna's
    requestor (and of no other: their agreements are not its yagna's).
    """
    app = create_app(dsn)
    context = ctx or WorkerContext(dsn, pool_size=min(concurrency, 40) + 2, lease_s=lease_s)
    async with context, app.open_async():
        mine = queue.requestor_queue(context.requestor_id)
        for name in queues:
            if name.startswith(f"{queue.DEFAULT_QUEUE}@") and name != mine:
                raise UserError(
                    f"queue {name} belongs to another requestor: this worker's yagna at "
                    f"{context.yagna.api_url} is {context.requestor_id} (its queue is {mine})"
                )
        queues = list(queues) or [mine]
        worker = make_worker(
            app,
            context,
            queues=queues,
            concurrency=concurrency,
            install_signal_handlers=install_signal_handlers,
        )
        logger.info(
            "worker %s of requestor %s listening on %s",
            context.name,
            context.requestor_id,
            ", ".join(queues),
        )
        await worker.run()
