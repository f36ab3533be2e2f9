"""The run's agreements: a worker job dispatched for each, dead jobs replaced, agreements
that are over terminated, activities retired before their agreement expires."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone

import procrastinate
from golem.node import GolemNode
from golem.resources import ResourceNotFound

from golem_tasks import queue
from golem_tasks.clock import Clock
from golem_tasks.db.types import Pool
from golem_tasks.retry import retrying
from golem_tasks.store import activities, agreements, tasks
from golem_tasks.store.records import ActivityStatus, AgreementStatus, LiveAgreement
from golem_tasks.supervisor.market import Market

logger = logging.getLogger(__name__)

#: A job for the same agreement that ends this often without progress gives the agreement up.
MAX_JOB_RESTARTS = 5
#: This many agreements given up that way in a row, with no task ending, fail the run.
MAX_FUTILE_AGREEMENTS = 3
MAX_TERMINATE_ATTEMPTS = 5
TERMINATE_TIMEOUT_S = 30.0
#: Activities are retired this long before their agreement expires (or a tenth of its life).
RETIRE_BEFORE_EXPIRY = timedelta(minutes=10)


class Agreements:
    """Keeps a worker job on every live agreement of one run, and ends the others."""

    def __init__(
        self,
        node: GolemNode,
        pool: Pool,
        qapp: procrastinate.App,
        *,
        run_id: str,
        queue_name: str,
        clock: Clock,
        error: Callable[[str, str, str], Awaitable[None]],
        futile: Callable[[str], None],
    ) -> None:
        self.node = node
        self.pool = pool
        self.qapp = qapp
        self.run_id = run_id
        self.queue_name = queue_name
        self.clock = clock
        #: Records an error of the run (source, kind, message).
        self._error = error
        #: Fails the run with the reason: agreement after agreement ends with no progress.
        self._futile_reason = futile
        self._job_restarts: Counter[str] = Counter()
        self._terminate_failures: Counter[str] = Counter()
        #: The job last dispatched for each agreement by this supervisor.
        self._jobs: dict[str, int] = {}
        #: (agreements given up in a row with no task ending, tasks ended then)
        self._futile: tuple[int, int] | None = None

    async def dispatch(self, agreement_id: str) -> None:
        """Ask a worker to drive this agreement's activity."""
        job_id = await queue.defer_drive(
            self.qapp, queue=self.queue_name, run_id=self.run_id, agreement_id=agreement_id
        )
        if job_id is not None:
            self._jobs[agreement_id] = job_id
            async with self.pool.connection() as conn:
                await agreements.set_job(conn, agreement_id, job_id)
        else:
            logger.warning("agreement %s: no job could be queued for it", agreement_id)

    async def reconcile(self, market: Market) -> list[LiveAgreement]:
        """Terminate agreements that are over; keep a job on every other one.

        Returns the agreements that still hold a provider for this run. An agreement whose
        job is alive is left to that job (it may be replacing a dead activity right now).
        """
        async with self.pool.connection() as conn:
            rows = await agreements.live(conn, self.run_id)
        # A job dispatched since the rows were read is not in them yet.
        job_ids = {
            row.agreement.id: row.agreement.job_id or self._jobs.get(row.agreement.id)
            for row in rows
        }
        states = await self._job_states([i for i in job_ids.values() if i is not None])
        # A job that ended after the rows were read stopped its activity before it ended:
        # read again what the rows said of the activities of ended jobs.
        if any(
            states.get(job_ids[row.agreement.id] or -1) != "alive"
            and not (row.activity_status is not None and row.activity_status.ended)
            for row in rows
        ):
            async with self.pool.connection() as conn:
                fresh = await agreements.live(conn, self.run_id)
            latest = {row.agreement.id: row for row in fresh}
            rows = [latest.get(row.agreement.id, row) for row in rows]
        live = []
        for row in rows:
            agreement = row.agreement
            if agreement.provider_id in market.negotiating:
                live.append(row)  # the negotiation itself dispatches its job
                continue
            if agreement.status is AgreementStatus.PENDING:
                if await self._settle_pending(agreement.id, agreement.created_at):
                    live.append(row)
                continue
            if agreement.terminate_reason:
                await self.terminate(agreement.id, agreement.terminate_reason)
                continue
            job_id = job_ids[agreement.id]
            job = "none" if job_id is None else states.get(job_id, "ended")
            if job == "alive":
                if row.activity_status is ActivityStatus.READY:
                    self._job_restarts.pop(agreement.id, None)  # it makes progress
                live.append(row)
                continue
            if row.activity_status is not None and row.activity_status.ended:
                await self.terminate(agreement.id, row.activity_stop_reason or "activity ended")
                continue
            if job != "aborted":  # a worker shut down: not the agreement's fault
                self._job_restarts[agreement.id] += 1
                if self._job_restarts[agreement.id] > MAX_JOB_RESTARTS:
                    await self.terminate(agreement.id, "no worker could drive its activity")
                    await self._count_futile_agreement()
                    continue
            await self.dispatch(agreement.id)
            live.append(row)
        return live

    async def _count_futile_agreement(self) -> None:
        """Jobs that keep breaking without any task ending would hire agreement after
        agreement for ever: after a few in a row with no progress, the run fails."""
        async with self.pool.connection() as conn:
            counts = await tasks.counts(conn, self.run_id)
        ended = counts.done + counts.failed
        if self._futile is None or self._futile[1] != ended:
            self._futile = (1, ended)
        else:
            self._futile = (self._futile[0] + 1, ended)
        if self._futile[0] >= MAX_FUTILE_AGREEMENTS:
            reason = (
                f"{self._futile[0]} agreements in a row ended with their jobs failing and no "
                "task ending: see golem-tasks show for the errors"
            )
            await self._error("supervisor", "jobs", reason)
            self._futile_reason(reason)

    async def _settle_pending(self, agreement_id: str, created_at: datetime) -> bool:
        """A pending agreement left by a crash: approved by now, or given up."""
        age_s = (datetime.now(timezone.utc) - created_at).total_seconds()
        if age_s < 120:
            return True  # still being negotiated
        try:
            data = await self.node.agreement(agreement_id).get_data(force=True)
            state = str(data.state)
        except Exception as exc:
            state = f"unknown ({exc})"
        if state == "Approved":
            async with self.pool.connection() as conn:
                await agreements.approve(conn, agreement_id)
            return True
        await self.terminate(agreement_id, f"not approved (state {state})")
        return False

    async def _job_states(self, job_ids: list[int]) -> dict[int, str]:
        """alive, aborted (its worker shut down) or ended, by job id, in one query; a job
        not in the answer has ended (finished jobs are deleted)."""
        if not job_ids:
            return {}
        async with self.pool.connection() as conn:
            found = await agreements.job_statuses(conn, job_ids)
        states = {}
        for job_id, name in found.items():
            status = queue.Status(name)
            if status in queue.LIVE_STATUSES:
                states[job_id] = "alive"
            else:
                states[job_id] = "aborted" if status == queue.Status.ABORTED else "ended"
        return states

    async def terminate(self, agreement_id: str, reason: str) -> None:
        """Terminate on yagna, then record it; a failure is retried on the next tick."""
        try:
            await asyncio.wait_for(
                retrying(
                    lambda: self.node.agreement(agreement_id).terminate(reason[:200]),
                    what="terminate agreement",
                ),
                TERMINATE_TIMEOUT_S,
            )
        except ResourceNotFound:
            pass  # yagna does not know it: nothing to terminate
        except Exception as exc:
            self._terminate_failures[agreement_id] += 1
            if self._terminate_failures[agreement_id] < MAX_TERMINATE_ATTEMPTS:
                logger.warning(
                    "terminating agreement %s failed (%s); will retry", agreement_id, exc
                )
                return
            logger.error("giving up terminating agreement %s: %s", agreement_id, exc)
        async with self.pool.connection() as conn:
            await agreements.terminated(conn, agreement_id, reason)
        logger.info("agreement %s terminated: %s", agreement_id, reason)

    async def terminate_all(self, reason: str) -> None:
        async with self.pool.connection() as conn:
            live = await agreements.live(conn, self.run_id)
        for row in live:
            await self.terminate(row.agreement.id, reason)

    async def retire_expiring(self, live: list[LiveAgreement]) -> None:
        """Stop activities shortly before their agreement expires: a provider that ends an
        expired agreement has not failed, and its tasks go back to the queue unharmed."""
        now = self.clock.now()
        for row in live:
            expires, approved = row.agreement.expires_at, row.agreement.approved_at
            if expires is None or approved is None or row.activity_id is None:
                continue
            margin = min(RETIRE_BEFORE_EXPIRY, (expires - approved) / 10)
            if now >= expires - margin:
                async with self.pool.connection() as conn:
                    await activities.request_stop(
                        conn, row.activity_id, f"its agreement expires at {expires.isoformat()}"
                    )

    async def avoided_providers(self) -> set[str]:
        async with self.pool.connection() as conn:
            return await agreements.avoided_providers(conn, self.run_id)
