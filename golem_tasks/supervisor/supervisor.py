"""The supervisor of one run: it owns the run's money and market, feeds its tasks and
dispatches one worker job per agreement.

Every decision is taken from the database, so a supervisor started again with the same run
id after a crash carries on where the last one stopped: it reuses live agreements and
their activities, re-dispatches jobs whose worker died and re-queues their tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import psycopg
from golem.node import GolemNode
from golem.resources import ResourceNotFound

from golem_tasks import appapi, budget, queue, taskstore
from golem_tasks.activities import end_activity
from golem_tasks.appmodule import App, CallableTasks, load_app
from golem_tasks.clock import Clock, SystemClock
from golem_tasks.config import YagnaSettings, describe_dsn
from golem_tasks.db import access
from golem_tasks.db.connect import open_pool, require_schema
from golem_tasks.db.listen import Listener
from golem_tasks.errors import UserError
from golem_tasks.identity import mismatch, node_id_of
from golem_tasks.retry import is_transient, retrying
from golem_tasks.runid import check_run_id, new_run_id
from golem_tasks.runlog import record_error
from golem_tasks.supervisor.allocations import Allocations
from golem_tasks.supervisor.feeder import Feeder
from golem_tasks.supervisor.market import Market
from golem_tasks.supervisor.options import RunOptions
from golem_tasks.supervisor.payments import Payments
from golem_tasks.supervisor.runlock import RunLock, SupervisorLost
from golem_tasks.taskstore import TaskCounts
from golem_tasks.yagna import check_yagna

logger = logging.getLogger(__name__)

TICK_S = 1.0
RESULTS_EVERY_S = 10.0
PROGRESS_EVERY_S = 5.0
#: A job for the same agreement that ends this often without progress gives the agreement up.
MAX_JOB_RESTARTS = 5
#: This many agreements given up that way in a row, with no task ending, fail the run.
MAX_FUTILE_AGREEMENTS = 3
MAX_TERMINATE_ATTEMPTS = 5
#: After the database came back, claims and worker jobs are not judged dead for this long.
AFTER_OUTAGE_GRACE_S = max(queue.STALLED_AFTER_S, taskstore.DEFAULT_LEASE_S) + 10.0

EXIT_OK, EXIT_FAILED_TASKS, EXIT_BUDGET, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 3, 4, 130
#: The run's lock connection is pinged this often; no answer within RunLock's timeout means
#: this supervisor may have lost the run (the server frees an unreachable client's lock
#: after 5 + 3 x 2 s of keepalive probes), so it stops acting at once.
LOCK_PING_S = 1.0
#: How long a supervisor that lost its run waits for its tasks to unwind before it exits.
UNWIND_S = 5.0
#: How often a standby supervisor tries to take the run's lock.
STANDBY_POLL_S = 0.5
ENDED = ("finished", "failed", "stopped")
TERMINATE_TIMEOUT_S = 30.0
#: At a budget stop, workers get this long to end their activities before the supervisor
#: destroys them itself (within budget.STOP_MARGIN_S of the decision).
BUDGET_STOP_WAIT_S = 5.0
#: Activities are retired this long before their agreement expires (or a tenth of its life).
RETIRE_BEFORE_EXPIRY = timedelta(minutes=10)


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    status: str  # finished, failed or stopped
    reason: str | None
    counts: TaskCounts
    exit_code: int


async def read_progress(conn: psycopg.AsyncConnection, run_id: str) -> tuple[dict[str, Any], int]:
    """The run's row, then its open tasks, in that order. The feeder stores its last tasks
    before it marks the feed done, so a run read as fully fed is never paired with a count
    from before its last tasks were stored (the other way round, a tick could see every
    task "ended" while the last ones were being stored, and end the run with them pending).
    """
    run = await access.one(conn, "get_run", run_id=run_id)
    if run is None:
        raise LookupError(f"run {run_id} is not in the database")
    return run, await taskstore.open_count(conn, run_id)


class Supervisor:
    """One run's supervisor. ``await Supervisor(...).main()`` runs it to its end."""

    def __init__(
        self,
        options: RunOptions,
        dsn: str,
        *,
        yagna: YagnaSettings | None = None,
        clock: Clock | None = None,
        callables: CallableTasks | None = None,
        app: App | None = None,
        schema_checked: bool = False,
    ) -> None:
        self.options = options
        self.dsn = dsn
        self.run_id = new_run_id() if options.run_id is None else check_run_id(options.run_id)
        self.yagna = yagna or YagnaSettings.from_env(
            subnet=options.subnet,
            payment_network=options.payment_network,
            payment_driver=options.payment_driver,
        )
        self.clock = clock or SystemClock()
        self.callables = callables
        self.app = app
        #: The caller checked the schema already (``Runner``): one check per start is enough.
        self.schema_checked = schema_checked
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._stop = asyncio.Event()
        self._stop_reason: str | None = None
        self._stop_status = "stopped"
        self._stop_code = EXIT_INTERRUPTED
        self._job_restarts: Counter[str] = Counter()
        self._terminate_failures: Counter[str] = Counter()
        #: The job last dispatched for each agreement by this supervisor.
        self._jobs: dict[str, int] = {}
        self._progress: tuple[tuple[int, ...], float] = ((), -PROGRESS_EVERY_S)
        self.started = asyncio.Event()
        self._grace_until = 0.0
        self._lock_lost = asyncio.Event()
        self._tick_task: asyncio.Future[bool] | None = None
        self._background: list[asyncio.Task[None]] = []
        #: Hires between ticks (offers arriving): held when the run stops or the lock goes.
        self._market: Market | None = None
        #: (agreements given up in a row with no task ending, tasks ended then)
        self._futile: tuple[int, int] | None = None

    # -- stopping -----------------------------------------------------------------------

    def request_stop(self, reason: str = "interrupted by the user") -> None:
        """Stop cleanly: activities ended, agreements terminated, invoices accepted."""
        self._set_stop(reason, "stopped", EXIT_INTERRUPTED)

    def _set_stop(self, reason: str, status: str, code: int) -> None:
        if self._stop_reason is None:
            self._stop_reason, self._stop_status, self._stop_code = reason, status, code
            logger.warning("stopping run %s: %s", self.run_id, reason)
        self._stop.set()
        if self._market is not None:
            self._market.hold()  # no offer arriving from now on is hired

    async def _budget_exceeded(self, reason: str) -> None:
        """The budget cannot carry the run further: stop before anything is charged that
        could not be paid (documents still coming for work ordered fit, and are paid)."""
        await self._error("payment", "budget", reason)
        self._set_stop(reason, "stopped", EXIT_BUDGET)

    # -- main ---------------------------------------------------------------------------

    async def main(self) -> RunOutcome:
        app = self.app or load_app(
            self.options.app, require_execute_task=not self.options.local_only
        )
        me = await check_yagna(self.yagna)  # before anything is written
        self.requestor_id = node_id_of(me, self.yagna.api_url)
        self.pool = await open_pool(self.dsn, max_size=8)
        try:
            if not self.schema_checked:
                async with self.pool.connection() as conn:
                    await require_schema(conn, self.dsn)
            self.lock = RunLock(self.dsn, self.run_id)
            try:
                ended = await self._take_run_lock()
                if ended is not None:
                    return ended
                await self._start_run(app)
                return await self._supervise(app)
            finally:
                await self.lock.release()
        finally:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.pool.close(), UNWIND_S)

    async def _watch_lock(self) -> None:
        """Ping the run's lock every second. The moment it may be gone (the database
        restarted, or this host was cut off and the server is about to free the lock for a
        standby), stop acting at once, wherever the tick waits: the loop then takes the lock
        back or, when another supervisor has it, stops with :class:`SupervisorLost`."""
        while True:
            await asyncio.sleep(LOCK_PING_S)
            if self._lock_lost.is_set() or await self.lock.check():
                continue
            self._lock_lost.set()
            if self._market is not None:
                self._market.hold()
            if self._tick_task is not None:
                self._tick_task.cancel()
            await self._stop_duties()

    async def _take_run_lock(self) -> RunOutcome | None:
        """Hold the run's lock, or refuse: one supervisor per run.

        A standby waits for it instead, while the run's supervisor lives (its lock goes
        with its connection: at once when its process dies, within the keepalive time when
        its host vanishes). Returns the outcome when the run ended meanwhile, or the
        standby was stopped, without touching the run.
        """
        waiting_since = asyncio.get_running_loop().time()
        said = False  # the standby's "waiting" line, once
        while True:
            locked = await self.lock.try_take()
            if locked and not self.options.standby:
                return None
            if not self.options.standby:
                raise UserError(
                    f"run {self.run_id} is already supervised by another process "
                    f"(database {describe_dsn(self.dsn)}); --standby takes over when it stops"
                )
            async with self.pool.connection() as conn:
                run = await access.one(conn, "get_run", run_id=self.run_id)
                counts = await taskstore.counts(conn, self.run_id)
            if run is None:
                raise UserError(f"no run {self.run_id} to stand by for: start it first")
            owner = run["requestor_id"]
            if owner is not None and owner != self.requestor_id:
                raise UserError(
                    mismatch(self.run_id, owner, self.requestor_id, self.yagna.api_url)
                    + f": a standby needs YAGNA_API_URL and YAGNA_APPKEY of {owner}"
                )
            if run["status"] in ENDED:
                logger.info("run %s %s: nothing to take over", self.run_id, run["status"])
                code = EXIT_FAILED_TASKS if counts.failed else EXIT_OK
                return RunOutcome(self.run_id, run["status"], run["stop_reason"], counts, code)
            if self._stop.is_set():  # the lock, if just taken, is released by main()
                return RunOutcome(
                    self.run_id, run["status"], "standby stopped", counts, EXIT_INTERRUPTED
                )
            if locked:
                waited = asyncio.get_running_loop().time() - waiting_since
                logger.warning(
                    "standby: taking over run %s from %s (waited %.1fs)",
                    self.run_id,
                    run["supervisor"] or "no supervisor",
                    waited,
                )
                return None
            if not said:
                said = True
                logger.info(
                    "standby for run %s: supervised by %s; taking over when it stops",
                    self.run_id,
                    run["supervisor"] or "another process",
                )
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), STANDBY_POLL_S)

    async def _start_run(self, app: App) -> None:
        options = self.options
        queue_name = (
            queue.local_queue(self.run_id)
            if options.local_only
            else queue.requestor_queue(self.requestor_id)
        )
        params = {
            "id": self.run_id,
            "app": app.spec,
            "workers": options.workers,
            "budget_per_hour": options.budget.amount,
            "max_price": options.max_price,
            "subnet": self.yagna.subnet,
            "payment_platform": self.yagna.payment_platform,
            "settings": options.settings_json(),
            "queue": queue_name,
            "requestor_id": self.requestor_id,
        }
        async with self.pool.connection() as conn:
            created = await access.one(conn, "create_run", **params)
            if created is None:
                before = await access.one(conn, "get_run", run_id=self.run_id)
                assert before is not None
                if queue.is_local_queue(before["queue"]) != options.local_only:
                    how = "run" if queue.is_local_queue(before["queue"]) else "supervise"
                    raise UserError(
                        f"run {self.run_id} was started with another command: resume it "
                        f"with golem-tasks {how} --run-id {self.run_id}"
                    )
                owner = before["requestor_id"]
                if owner is not None and owner != self.requestor_id:
                    # Its agreements and payments exist only on that node.
                    raise UserError(
                        mismatch(self.run_id, owner, self.requestor_id, self.yagna.api_url)
                        + f": supervise it with YAGNA_API_URL and YAGNA_APPKEY of {owner}"
                    )
                await access.execute(conn, "resume_run", **params)
                # Stop requests of the previous supervisor's own end do not apply any more.
                await access.execute(conn, "clear_stop_requests", run_id=self.run_id)
                logger.info("resuming run %s", self.run_id)
            else:
                logger.info("new run %s", self.run_id)
            self.run_row = await access.one(conn, "get_run", run_id=self.run_id)

    async def _supervise(self, app: App) -> RunOutcome:
        run = self.run_row
        self.queue_name = run["queue"]
        qapp = queue.make_app(self.dsn, max_pool_size=4)
        node = GolemNode(
            self.yagna.app_key,
            api_url=self.yagna.api_url,
            app_session_id=f"golem-tasks-{self.run_id}",
        )
        async with qapp.open_async(), node, Listener(self.dsn, "listen_feed") as feed_wake:
            self.node, self.qapp = node, qapp
            allocations = Allocations(
                node,
                self.pool,
                run_id=self.run_id,
                amount=self.options.budget.amount,
                network=self.yagna.payment_network,
                driver=self.yagna.payment_driver,
                clock=self.clock,
            )
            payments = Payments(
                node,
                self.pool,
                run_id=self.run_id,
                run_start=run["created_at"],
                budget=self.options.budget.amount,
                allocations=allocations,
                clock=self.clock,
                max_price=self.options.max_price,
                warmup_s=self.options.warmup_s,
            )
            market = Market(
                node,
                self.pool,
                run_id=self.run_id,
                payload=app.payload,
                subnet=self.yagna.subnet,
                allocations=allocations,
                limits=self.options.price_limits,
                demand_ttl_s=self.options.demand_ttl_s,
                agreement_lifetime_s=self.options.agreement_lifetime_s,
                debit_note_interval_s=self.options.debit_note_interval_s,
                payment_timeout_s=self.options.payment_timeout_s,
                clock=self.clock,
                on_agreement=self._dispatch,
            )
            self._market = market
            feeder = Feeder(
                self.pool,
                self.run_id,
                app,
                window=self.options.window(),
                callables=self.callables,
                wake=feed_wake,
            )
            await payments.start()
            self._payments = payments
            self._duties = {
                "payments": payments.run,
                "feeder": lambda: self._guard(feeder.run(), "feeding tasks"),
            }
            self._start_duties()
            try:
                await retrying(allocations.current, what="create allocation")
                # Offers come in while the rest starts (the first tick hires them); a
                # failure here is retried by the ticks.
                await _best_effort("publish the demand", market.subscribe())
                await payments.reconcile()
                if self.callables is not None:
                    # Callables of tasks stored before a restart exist only once re-fed.
                    await _first(feeder.replayed.wait(), self._stop.wait())
                self.started.set()
                await self._loop(app, market, allocations)
                return await self._shutdown(market, payments, allocations)
            finally:
                await self._stop_duties()
                await _best_effort("close the market", market.close())

    async def _guard(self, work: Awaitable[None], what: str) -> None:
        """A background duty that fails stops the run with the reason."""
        try:
            await work
        except asyncio.CancelledError:
            raise
        except UserError as exc:
            self._set_stop(str(exc), "failed", EXIT_ERROR)
        except Exception as exc:
            logger.exception("%s failed", what)
            self._set_stop(f"{what} failed: {exc}", "failed", EXIT_ERROR)

    def _start_duties(self) -> None:
        self._background = [
            asyncio.create_task(duty(), name=name) for name, duty in self._duties.items()
        ]

    async def _stop_duties(self) -> None:
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._background = []

    async def _regain_lock(self) -> None:
        """The watchdog found the lock's connection gone and stopped every duty: take the
        lock again (waiting for the database), then resume; :class:`SupervisorLost` when
        another supervisor took the run meanwhile. Two supervisors never act at once."""
        await self._stop_duties()
        await self.lock.regain()
        self._lock_lost.clear()
        self._grace_until = asyncio.get_running_loop().time() + AFTER_OUTAGE_GRACE_S
        self._start_duties()
        # Documents whose handling the pause cut short are still received on yagna.
        await _best_effort("reconcile payments", self._payments.reconcile())

    async def _loop(self, app: App, market: Market, allocations: Allocations) -> None:
        watchdog = asyncio.create_task(self._watch_lock(), name="run-lock-watchdog")
        try:
            await self._ticks(app, market, allocations)
        finally:
            watchdog.cancel()
            await asyncio.gather(watchdog, return_exceptions=True)

    async def _ticks(self, app: App, market: Market, allocations: Allocations) -> None:
        last_results = -RESULTS_EVERY_S
        loop = asyncio.get_running_loop()
        failures = 0
        while not self._stop.is_set():
            try:
                if self._lock_lost.is_set():
                    await self._regain_lock()
                self._tick_task = asyncio.ensure_future(self._tick(market, allocations))
                try:
                    done = await self._tick_task
                except asyncio.CancelledError:
                    current = asyncio.current_task()
                    if self._lock_lost.is_set() and not (current and current.cancelling()):
                        continue  # the watchdog stopped this tick: take the lock back first
                    raise
                finally:
                    self._tick_task = None
                if done:
                    await self._record_results(app)  # the final count
                    break
                failures = 0
                if loop.time() - last_results >= RESULTS_EVERY_S:
                    await self._record_results(app)
                    last_results = loop.time()
            except SupervisorLost:
                raise
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # A passing failure (database or yagna blip) must not end a run of hours.
                failures += 1
                if is_transient(exc):
                    logger.warning("supervisor tick failed (%d in a row): %s", failures, exc)
                else:
                    logger.exception("supervisor tick failed (%d in a row)", failures)
                with contextlib.suppress(Exception):
                    await self._error("supervisor", "tick", f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(min(30.0, TICK_S * 2**failures))
                continue
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), TICK_S)

    async def _tick(self, market: Market, allocations: Allocations) -> bool:
        """One round of supervision; True when the run has nothing left to do."""
        # Right after the database came back, the workers' claims and heartbeats look
        # expired because nobody could renew them: give the workers time to renew them
        # before judging them dead.
        judge = asyncio.get_running_loop().time() >= self._grace_until
        async with self.pool.connection() as conn:
            await access.execute(conn, "supervisor_seen", run_id=self.run_id, supervisor=self.name)
            expired = await taskstore.requeue_expired(conn, self.run_id) if judge else []
            for task_id, status in expired:
                logger.warning("task %s: claim expired, now %s", task_id, status)
            run, open_tasks = await read_progress(conn, self.run_id)
        await allocations.current()  # a new one when a new hour of the run begins
        await allocations.release_past()
        self._revive_payment_collectors()
        if judge:
            await queue.retry_stalled(self.qapp)
        live = await self._reconcile_agreements(market)
        await self._retire_expiring(live)
        if run["feed_done"] and open_tasks == 0:
            async with self.pool.connection() as conn:
                counts = await taskstore.counts(conn, self.run_id)
            failed = counts.failed
            reason = f"all {counts.total} tasks ended" + (f", {failed} failed" if failed else "")
            self._set_stop(
                reason,
                "failed" if failed else "finished",
                EXIT_FAILED_TASKS if failed else EXIT_OK,
            )
            return True
        want = self.options.workers
        if run["feed_done"]:
            want = min(want, open_tasks)
        standing = await self._budget_standing()
        if standing.exposure.running and not standing.fits:
            await self._budget_exceeded(standing.reason())
            return False
        # Agreements made since ``live`` was read are in neither set: count them too.
        busy = {row["provider_id"] for row in live} | market.negotiating | market.take_agreed()
        await market.hire(
            max(want - len(busy), 0),
            busy,
            await self._avoided_providers(),
            room=standing.room - market.reserved,
        )
        if market.priced_out and not live and not market.negotiating:
            await self._budget_exceeded(
                f"budget reached: no provider can be hired within the "
                f"{max(standing.room, Decimal(0)).normalize():f} left of the hourly budget of "
                f"{standing.budget.normalize():f} ({standing.spent.normalize():f} accepted in "
                f"the last hour, up to {standing.exposure.total.normalize():f} still to come)"
            )
            return False
        await self._log_progress(len(live), run["feed_done"])
        return False

    async def _budget_standing(self) -> budget.Standing:
        """The prospective budget rule: accepted spend plus what every activity may still
        charge before its next debit note (see :mod:`golem_tasks.budget`)."""
        async with self.pool.connection() as conn:
            return await budget.standing(
                conn,
                self.run_id,
                self.clock.now(),
                self.options.budget.amount,
                default_interval_s=self.options.debit_note_interval_s,
            )

    async def _retire_expiring(self, live: list[dict[str, Any]]) -> None:
        """Stop activities shortly before their agreement expires: a provider that ends an
        expired agreement has not failed, and its tasks go back to the queue unharmed."""
        now = self.clock.now()
        for row in live:
            expires, approved = row["expires_at"], row["approved_at"]
            if expires is None or approved is None or row["activity_id"] is None:
                continue
            margin = min(RETIRE_BEFORE_EXPIRY, (expires - approved) / 10)
            if now >= expires - margin:
                async with self.pool.connection() as conn:
                    await access.one(
                        conn,
                        "request_activity_stop",
                        id=row["activity_id"],
                        reason=f"its agreement expires at {expires.isoformat()}",
                    )

    def _revive_payment_collectors(self) -> None:
        """golem-core's payment event collectors end silently on an unexpected error."""
        for name in ("_debit_note_event_collector", "_invoice_event_collector"):
            collector = getattr(self.node, name, None)
            task = getattr(collector, "_event_collecting_task", None)
            if collector is not None and task is not None and task.done():
                logger.warning("restarting golem-core's %s", name.strip("_").replace("_", " "))
                collector.stop_collecting_events()
                collector.start_collecting_events()

    async def _log_progress(self, live: int, feed_done: bool) -> None:
        """A progress line when something changed, at most every few seconds."""
        now = asyncio.get_running_loop().time()
        if now - self._progress[1] < PROGRESS_EVERY_S:
            return
        async with self.pool.connection() as conn:
            counts = await taskstore.counts(conn, self.run_id)
        state = (counts.done, counts.failed, counts.total, live)
        changed = state != self._progress[0]
        self._progress = (state, now)
        if not changed:
            return
        total = f"{counts.total}" if feed_done else f"{counts.total}+"
        logger.info(
            "progress: %d/%s done, %d failed, %d running, %d agreements",
            counts.done,
            total,
            counts.failed,
            counts.claimed,
            live,
        )

    async def _avoided_providers(self) -> set[str]:
        async with self.pool.connection() as conn:
            rows = await access.all_rows(conn, "avoided_providers", run_id=self.run_id)
        return {row["provider_id"] for row in rows}

    async def _record_results(self, app: App) -> None:
        token = appapi.current_pool.set(self.pool)
        try:
            if app.results_cnt is not None:
                count = int(await app.results_cnt(self.run_id))
            else:
                async with self.pool.connection() as conn:
                    count = await taskstore.done_count(conn, self.run_id)
        except Exception as exc:
            logger.warning("results_cnt failed: %s", exc)
            return
        finally:
            appapi.current_pool.reset(token)
        async with self.pool.connection() as conn:
            await access.execute(
                conn,
                "record_results_cnt",
                run_id=self.run_id,
                at=self.clock.now(),
                results_cnt=count,
            )

    # -- agreements and their jobs --------------------------------------------------------

    async def _dispatch(self, agreement_id: str) -> None:
        """Ask a worker to drive this agreement's activity."""
        job_id = await queue.defer_drive(
            self.qapp, queue=self.queue_name, run_id=self.run_id, agreement_id=agreement_id
        )
        if job_id is not None:
            self._jobs[agreement_id] = job_id
            async with self.pool.connection() as conn:
                await access.execute(conn, "set_agreement_job", id=agreement_id, job_id=job_id)
        else:
            logger.warning("agreement %s: no job could be queued for it", agreement_id)

    async def _reconcile_agreements(self, market: Market) -> list[dict[str, Any]]:
        """Terminate agreements that are over; keep a job on every other one.

        Returns the agreements that still hold a provider for this run. An agreement whose
        job is alive is left to that job (it may be replacing a dead activity right now).
        """
        async with self.pool.connection() as conn:
            rows = await access.all_rows(conn, "live_agreements", run_id=self.run_id)
        # A job dispatched since the rows were read is not in them yet.
        job_ids = {row["id"]: row["job_id"] or self._jobs.get(row["id"]) for row in rows}
        states = await self._job_states([i for i in job_ids.values() if i is not None])
        # A job that ended after the rows were read stopped its activity before it ended:
        # read again what the rows said of the activities of ended jobs.
        if any(
            states.get(job_ids[row["id"]] or -1) != "alive"
            and row["activity_status"] not in ("stopped", "failed")
            for row in rows
        ):
            async with self.pool.connection() as conn:
                fresh = await access.all_rows(conn, "live_agreements", run_id=self.run_id)
            latest = {row["id"]: row for row in fresh}
            rows = [latest.get(row["id"], row) for row in rows]
        live = []
        for row in rows:
            agreement_id = row["id"]
            if row["provider_id"] in market.negotiating:
                live.append(row)  # the negotiation itself dispatches its job
                continue
            if row["status"] == "pending":
                if await self._settle_pending(row):
                    live.append(row)
                continue
            if row["terminate_reason"]:
                await self._terminate(agreement_id, row["terminate_reason"])
                continue
            job_id = job_ids[agreement_id]
            job = "none" if job_id is None else states.get(job_id, "ended")
            if job == "alive":
                if row["activity_status"] == "ready":
                    self._job_restarts.pop(agreement_id, None)  # it makes progress
                live.append(row)
                continue
            if row["activity_status"] in ("stopped", "failed"):
                await self._terminate(agreement_id, row["activity_stop_reason"] or "activity ended")
                continue
            if job != "aborted":  # a worker shut down: not the agreement's fault
                self._job_restarts[agreement_id] += 1
                if self._job_restarts[agreement_id] > MAX_JOB_RESTARTS:
                    await self._terminate(agreement_id, "no worker could drive its activity")
                    await self._count_futile_agreement()
                    continue
            await self._dispatch(agreement_id)
            live.append(row)
        return live

    async def _count_futile_agreement(self) -> None:
        """Jobs that keep breaking without any task ending would hire agreement after
        agreement for ever: after a few in a row with no progress, the run fails."""
        async with self.pool.connection() as conn:
            counts = await taskstore.counts(conn, self.run_id)
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
            self._set_stop(reason, "failed", EXIT_ERROR)

    async def _settle_pending(self, row: dict[str, Any]) -> bool:
        """A pending agreement left by a crash: approved by now, or given up."""
        age_s = (datetime.now(timezone.utc) - row["created_at"]).total_seconds()
        if age_s < 120:
            return True  # still being negotiated
        try:
            data = await self.node.agreement(row["id"]).get_data(force=True)
            state = str(data.state)
        except Exception as exc:
            state = f"unknown ({exc})"
        if state == "Approved":
            async with self.pool.connection() as conn:
                await access.execute(conn, "approve_agreement", id=row["id"])
            return True
        await self._terminate(row["id"], f"not approved (state {state})")
        return False

    async def _job_states(self, job_ids: list[int]) -> dict[int, str]:
        """alive, aborted (its worker shut down) or ended, by job id, in one query; a job
        not in the answer has ended (finished jobs are deleted)."""
        if not job_ids:
            return {}
        async with self.pool.connection() as conn:
            rows = await access.all_rows(conn, "job_statuses", ids=job_ids)
        states = {}
        for row in rows:
            status = queue.Status(row["status"])
            if status in queue.LIVE_STATUSES:
                states[row["id"]] = "alive"
            else:
                states[row["id"]] = "aborted" if status == queue.Status.ABORTED else "ended"
        return states

    async def _terminate(self, agreement_id: str, reason: str) -> None:
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
            await access.execute(conn, "mark_agreement_terminated", id=agreement_id, reason=reason)
        logger.info("agreement %s terminated: %s", agreement_id, reason)

    async def _error(self, source: str, kind: str, message: str) -> None:
        async with self.pool.connection() as conn:
            await record_error(conn, self.run_id, source=source, kind=kind, message=message)

    # -- the end ------------------------------------------------------------------------

    async def _shutdown(
        self, market: Market, payments: Payments, allocations: Allocations
    ) -> RunOutcome:
        reason = self._stop_reason or "stopped"
        # Each step is tried even if an earlier one failed: a database or yagna blip at
        # the end must not leave agreements running or invoices unpaid.
        await _best_effort("ask activities to stop", self._ask_all_to_stop(reason))
        await _best_effort("withdraw the demand", market.close())
        await _best_effort("end activities", self._wait_for_activities(reason))
        await _best_effort("terminate agreements", self._terminate_all(reason))
        await _best_effort("wait for invoices", self._wait_for_invoices(payments))
        await payments.drain(self.options.invoice_wait_s)
        await _best_effort("release allocations", allocations.release_all())
        async with self.pool.connection() as conn:
            counts = await taskstore.counts(conn, self.run_id)
            await access.execute(
                conn,
                "set_run_status",
                run_id=self.run_id,
                status=self._stop_status,
                reason=reason,
            )
        logger.info("run %s %s: %s", self.run_id, self._stop_status, reason)
        return RunOutcome(self.run_id, self._stop_status, reason, counts, self._stop_code)

    async def _ask_all_to_stop(self, reason: str) -> None:
        async with self.pool.connection() as conn:
            await access.execute(
                conn, "set_run_status", run_id=self.run_id, status="stopping", reason=reason
            )
            await access.execute(
                conn, "request_run_activities_stop", run_id=self.run_id, reason=reason
            )

    async def _terminate_all(self, reason: str) -> None:
        async with self.pool.connection() as conn:
            rows = await access.all_rows(conn, "live_agreements", run_id=self.run_id)
        for row in rows:
            await self._terminate(row["id"], reason)

    async def _wait_for_activities(self, reason: str) -> None:
        """Give workers time to end their activities; end the rest from here."""
        wait = self.options.stop_wait_s
        if self._stop_code == EXIT_BUDGET:  # their charges are kept only this long ahead
            wait = min(wait, BUDGET_STOP_WAIT_S)
        deadline = asyncio.get_running_loop().time() + wait
        while True:
            async with self.pool.connection() as conn:
                left = await access.all_rows(conn, "unfinished_activities", run_id=self.run_id)
            if not left:
                return
            if asyncio.get_running_loop().time() >= deadline:
                break
            await asyncio.sleep(0.5)
        for row in left:
            logger.warning("activity %s did not stop in time; destroying it", row["id"])
            with contextlib.suppress(Exception):
                await self.node.activity(row["id"]).destroy()
            async with self.pool.connection() as conn:
                await end_activity(
                    conn, row["id"], status="stopped", reason=reason, count_attempt=False
                )

    async def _wait_for_invoices(self, payments: Payments) -> None:
        deadline = asyncio.get_running_loop().time() + self.options.invoice_wait_s
        while True:
            async with self.pool.connection() as conn:
                missing = await access.all_rows(
                    conn, "agreement_ids_without_invoice", run_id=self.run_id
                )
            if not missing:
                return
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                logger.warning("%d agreements sent no invoice in time", len(missing))
                return
            payments.invoice_seen.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(payments.invoice_seen.wait(), min(remaining, 1.0))


async def _first(*waits: Awaitable[Any]) -> None:
    """Wait until the first of ``waits`` is done; cancel the others."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


async def _best_effort(what: str, step: Awaitable[None]) -> None:
    try:
        await step
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("could not %s", what)
