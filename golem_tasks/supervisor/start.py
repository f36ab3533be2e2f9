"""The start of a run: one supervisor takes its lock (a standby waits for it), then the run
is stored, or resumed with the options of the command that resumes it."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from golem_tasks import queue
from golem_tasks.appmodule import App
from golem_tasks.config import YagnaSettings, describe_dsn
from golem_tasks.db.types import Pool
from golem_tasks.errors import UserError
from golem_tasks.identity import mismatch
from golem_tasks.store import activities, runs, tasks
from golem_tasks.store.records import Run
from golem_tasks.supervisor.options import RunOptions
from golem_tasks.supervisor.outcome import EXIT_FAILED_TASKS, EXIT_INTERRUPTED, EXIT_OK, RunOutcome
from golem_tasks.supervisor.runlock import RunLock

logger = logging.getLogger(__name__)

#: How often a standby supervisor tries to take the run's lock.
STANDBY_POLL_S = 0.5


class RunStart:
    """Takes one run for one supervisor."""

    def __init__(
        self,
        pool: Pool,
        run_id: str,
        options: RunOptions,
        yagna: YagnaSettings,
        *,
        requestor_id: str,
        name: str,
        dsn: str,
        stopped: asyncio.Event,
    ) -> None:
        self.pool = pool
        self.run_id = run_id
        self.options = options
        self.yagna = yagna
        self.requestor_id = requestor_id
        #: The supervisor's name (host:pid), recorded as the holder of the run's new term.
        self.name = name
        self.dsn = dsn
        #: Set when the supervisor is asked to stop (a standby then gives up waiting).
        self.stopped = stopped

    async def take_lock(self, lock: RunLock) -> RunOutcome | None:
        """Hold the run's lock, or refuse: one supervisor per run.

        A standby waits for it instead, while the run's supervisor lives (its lock goes
        with its connection: at once when its process dies, within the keepalive time when
        its host vanishes). Returns the outcome when the run ended meanwhile, or the
        standby was stopped, without touching the run.
        """
        waiting_since = asyncio.get_running_loop().time()
        said = False  # the standby's "waiting" line, once
        while True:
            locked = await lock.try_take()
            if locked and not self.options.standby:
                return None
            if not self.options.standby:
                raise UserError(
                    f"run {self.run_id} is already supervised by another process "
                    f"(database {describe_dsn(self.dsn)}); --standby takes over when it stops"
                )
            async with self.pool.connection() as conn:
                run = await runs.get(conn, self.run_id)
                counts = await tasks.counts(conn, self.run_id)
            if run is None:
                raise UserError(f"no run {self.run_id} to stand by for: start it first")
            owner = run.requestor_id
            if owner is not None and owner != self.requestor_id:
                raise UserError(
                    mismatch(self.run_id, owner, self.requestor_id, self.yagna.api_url)
                    + f": a standby needs YAGNA_API_URL and YAGNA_APPKEY of {owner}"
                )
            if run.status.ended:
                logger.info("run %s %s: nothing to take over", self.run_id, run.status)
                code = EXIT_FAILED_TASKS if counts.failed else EXIT_OK
                return RunOutcome(self.run_id, run.status, run.stop_reason, counts, code)
            if self.stopped.is_set():  # the lock, if just taken, is released by main()
                return RunOutcome(
                    self.run_id, run.status, "standby stopped", counts, EXIT_INTERRUPTED
                )
            if locked:
                waited = asyncio.get_running_loop().time() - waiting_since
                logger.warning(
                    "standby: taking over run %s from %s (waited %.1fs)",
                    self.run_id,
                    run.supervisor or "no supervisor",
                    waited,
                )
                return None
            if not said:
                said = True
                logger.info(
                    "standby for run %s: supervised by %s; taking over when it stops",
                    self.run_id,
                    run.supervisor or "another process",
                )
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stopped.wait(), STANDBY_POLL_S)

    async def start(self, app: App) -> Run:
        """Store a new run, or resume a stopped one with this command's options."""
        options = self.options
        queue_name = (
            queue.local_queue(self.run_id)
            if options.local_only
            else queue.requestor_queue(self.requestor_id)
        )
        stored = runs.RunOptions(
            id=self.run_id,
            app=app.spec,
            workers=options.workers,
            budget_per_hour=options.budget.amount,
            max_price=options.max_price,
            subnet=self.yagna.subnet,
            payment_platform=self.yagna.payment_platform,
            settings=options.settings_json(),
            queue=queue_name,
            requestor_id=self.requestor_id,
        )
        async with self.pool.connection() as conn:
            if not await runs.create(conn, stored):
                before = await runs.get(conn, self.run_id)
                if before is None:  # deleted between the two statements
                    raise UserError(f"run {self.run_id} vanished while it was being resumed")
                if queue.is_local_queue(before.queue) != options.local_only:
                    how = "run" if queue.is_local_queue(before.queue) else "supervise"
                    raise UserError(
                        f"run {self.run_id} was started with another command: resume it "
                        f"with golem-tasks {how} --run-id {self.run_id}"
                    )
                owner = before.requestor_id
                if owner is not None and owner != self.requestor_id:
                    # Its agreements and payments exist only on that node.
                    raise UserError(
                        mismatch(self.run_id, owner, self.requestor_id, self.yagna.api_url)
                        + f": supervise it with YAGNA_API_URL and YAGNA_APPKEY of {owner}"
                    )
                await runs.resume(conn, stored)
                # Stop requests of the previous supervisor's own end do not apply any more.
                await activities.clear_stop_requests(conn, self.run_id)
                logger.info("resuming run %s", self.run_id)
            else:
                logger.info("new run %s", self.run_id)
            # This supervisor holds the run from now: a term of its own in the record.
            await runs.supervisor_took(conn, self.run_id, self.name)
            run = await runs.get(conn, self.run_id)
        if run is None:
            raise UserError(f"run {self.run_id} vanished while it was being started")
        return run
