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
from collections.abc import Awaitable
from decimal import Decimal
from typing import Any

from golem.node import GolemNode

from golem_tasks import appapi, budget, queue
from golem_tasks.appmodule import App, CallableTasks, load_app
from golem_tasks.clock import Clock, SystemClock
from golem_tasks.config import YagnaSettings
from golem_tasks.db.connect import open_pool, require_schema
from golem_tasks.db.listen import Listener
from golem_tasks.errors import UserError
from golem_tasks.identity import node_id_of
from golem_tasks.retry import is_transient, retrying
from golem_tasks.runid import check_run_id, new_run_id
from golem_tasks.store import errors, runs, tasks
from golem_tasks.store.records import RunStatus
from golem_tasks.supervisor.agreements import Agreements
from golem_tasks.supervisor.allocations import Allocations
from golem_tasks.supervisor.feeder import Feeder
from golem_tasks.supervisor.market import Market
from golem_tasks.supervisor.options import RunOptions
from golem_tasks.supervisor.outcome import (
    EXIT_BUDGET,
    EXIT_ERROR,
    EXIT_FAILED_TASKS,
    EXIT_INTERRUPTED,
    EXIT_OK,
    RunOutcome,
)
from golem_tasks.supervisor.payments import Payments
from golem_tasks.supervisor.runlock import RunLock, SupervisorLost
from golem_tasks.supervisor.shutdown import Shutdown, Stop, best_effort
from golem_tasks.supervisor.start import RunStart
from golem_tasks.yagna import check_yagna

logger = logging.getLogger(__name__)

TICK_S = 1.0
RESULTS_EVERY_S = 10.0
PROGRESS_EVERY_S = 5.0
#: After the database came back, claims and worker jobs are not judged dead for this long.
AFTER_OUTAGE_GRACE_S = max(queue.STALLED_AFTER_S, tasks.DEFAULT_LEASE_S) + 10.0

#: The run's lock connection is pinged this often; no answer within RunLock's timeout means
#: this supervisor may have lost the run (the embedded server frees an unreachable client's
#: lock after 3 + 3 x 1 s of keepalive probes), so it stops acting at once.
LOCK_PING_S = 0.5
#: How long a supervisor that lost its run waits for its tasks to unwind before it exits.
UNWIND_S = 5.0


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
        self._stop_status = RunStatus.STOPPED
        self._stop_code = EXIT_INTERRUPTED
        self._progress: tuple[tuple[int, ...], float] = ((), -PROGRESS_EVERY_S)
        self.started = asyncio.Event()
        self._grace_until = 0.0
        self._lock_lost = asyncio.Event()
        self._watching = False
        self._tick_task: asyncio.Future[bool] | None = None
        self._background: list[asyncio.Task[None]] = []
        #: Hires between ticks (offers arriving): held when the run stops or the lock goes.
        self._market: Market | None = None

    # -- stopping -----------------------------------------------------------------------

    def request_stop(self, reason: str = "interrupted by the user") -> None:
        """Stop cleanly: activities ended, agreements terminated, invoices accepted."""
        self._set_stop(reason, RunStatus.STOPPED, EXIT_INTERRUPTED)

    def _set_stop(self, reason: str, status: RunStatus, code: int) -> None:
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
        self._set_stop(reason, RunStatus.STOPPED, EXIT_BUDGET)

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
            self.lock = RunLock(self.dsn, self.run_id, holder=self.name)
            try:
                start = RunStart(
                    self.pool,
                    self.run_id,
                    self.options,
                    self.yagna,
                    requestor_id=self.requestor_id,
                    name=self.name,
                    dsn=self.dsn,
                    stopped=self._stop,
                )
                ended = await start.take_lock(self.lock)
                if ended is not None:
                    return ended
                self.run = await start.start(app)
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
        while self._watching:
            await asyncio.sleep(LOCK_PING_S)
            if not self._watching or self._lock_lost.is_set() or await self.lock.check():
                continue
            self._lock_lost.set()
            if self._market is not None:
                self._market.hold()
            if self._tick_task is not None:
                self._tick_task.cancel()
            await self._stop_duties()

    async def _supervise(self, app: App) -> RunOutcome:
        run = self.run
        qapp = queue.make_app(self.dsn, max_pool_size=4)
        node = GolemNode(
            self.yagna.app_key,
            api_url=self.yagna.api_url,
            app_session_id=f"golem-tasks-{self.run_id}",
        )
        async with qapp.open_async(), node, Listener(self.dsn, "listen_feed") as feed_wake:
            self.node, self.qapp = node, qapp
            agreements = Agreements(
                node,
                self.pool,
                qapp,
                run_id=self.run_id,
                queue_name=run.queue,
                clock=self.clock,
                error=self._error,
                futile=lambda reason: self._set_stop(reason, RunStatus.FAILED, EXIT_ERROR),
            )
            self.agreements = agreements
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
                run_start=run.created_at,
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
                on_agreement=agreements.dispatch,
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
                await best_effort("publish the demand", market.subscribe())
                await payments.reconcile()
                if self.callables is not None:
                    # Callables of tasks stored before a restart exist only once re-fed.
                    await _first(feeder.replayed.wait(), self._stop.wait())
                self.started.set()
                await self._loop(app, market, allocations)
                shutdown = Shutdown(
                    node,
                    self.pool,
                    self.run_id,
                    market,
                    payments,
                    allocations,
                    agreements,
                    stop_wait_s=self.options.stop_wait_s,
                    invoice_wait_s=self.options.invoice_wait_s,
                )
                stop = Stop(self._stop_reason or "stopped", self._stop_status, self._stop_code)
                return await shutdown.run(stop)
            finally:
                await self._stop_duties()
                await best_effort("close the market", market.close())

    async def _guard(self, work: Awaitable[None], what: str) -> None:
        """A background duty that fails stops the run with the reason."""
        try:
            await work
        except asyncio.CancelledError:
            raise
        except UserError as exc:
            self._set_stop(str(exc), RunStatus.FAILED, EXIT_ERROR)
        except Exception as exc:
            logger.exception("%s failed", what)
            self._set_stop(f"{what} failed: {exc}", RunStatus.FAILED, EXIT_ERROR)

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
        await best_effort("record the run's new term", self._took_run())
        self._start_duties()
        # Documents whose handling the pause cut short are still received on yagna.
        await best_effort("reconcile payments", self._payments.reconcile())

    async def _took_run(self) -> None:
        """Record that this supervisor holds the run from now (``tasks.supervisor_term``)."""
        async with self.pool.connection() as conn:
            await runs.supervisor_took(conn, self.run_id, self.name)

    async def _loop(self, app: App, market: Market, allocations: Allocations) -> None:
        self._watching = True
        watchdog = asyncio.create_task(self._watch_lock(), name="run-lock-watchdog")
        try:
            await self._ticks(app, market, allocations)
        finally:
            # Python 3.11's wait_for loses a cancellation that arrives as the ping it waits
            # for ends (fixed in 3.12): the watchdog then pinged for ever and the run never
            # shut down (seen in make bench). The flag ends it whatever the cancellation.
            self._watching = False
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
            await runs.supervisor_seen(conn, self.run_id, self.name)
            expired = await tasks.requeue_expired(conn, self.run_id) if judge else []
            for task_id, status in expired:
                logger.warning("task %s: claim expired, now %s", task_id, status)
            run, open_tasks = await runs.progress(conn, self.run_id)
        await allocations.current()  # a new one when a new hour of the run begins
        await allocations.release_past()
        self._revive_payment_collectors()
        if judge:
            await queue.retry_stalled(self.qapp)
        live = await self.agreements.reconcile(market)
        await self.agreements.retire_expiring(live)
        if run.feed_done and open_tasks == 0:
            async with self.pool.connection() as conn:
                counts = await tasks.counts(conn, self.run_id)
            failed = counts.failed
            reason = f"all {counts.total} tasks ended" + (f", {failed} failed" if failed else "")
            self._set_stop(
                reason,
                RunStatus.FAILED if failed else RunStatus.FINISHED,
                EXIT_FAILED_TASKS if failed else EXIT_OK,
            )
            return True
        want = self.options.workers
        if run.feed_done:
            want = min(want, open_tasks)
        standing = await self._budget_standing()
        if standing.exposure.running and not standing.fits:
            await self._budget_exceeded(standing.reason())
            return False
        # Agreements made since ``live`` was read are in neither set: count them too.
        busy = {row.agreement.provider_id for row in live}
        busy |= market.negotiating | market.take_agreed()
        await market.hire(
            max(want - len(busy), 0),
            busy,
            await self.agreements.avoided_providers(),
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
        await self._log_progress(len(live), run.feed_done)
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
            counts = await tasks.counts(conn, self.run_id)
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

    async def _record_results(self, app: App) -> None:
        token = appapi.current_pool.set(self.pool)
        try:
            if app.results_cnt is not None:
                count = int(await app.results_cnt(self.run_id))
            else:
                async with self.pool.connection() as conn:
                    count = await tasks.done_count(conn, self.run_id)
        except Exception as exc:
            logger.warning("results_cnt failed: %s", exc)
            return
        finally:
            appapi.current_pool.reset(token)
        async with self.pool.connection() as conn:
            await runs.record_results_cnt(conn, self.run_id, self.clock.now(), count)

    async def _error(self, source: str, kind: str, message: str) -> None:
        async with self.pool.connection() as conn:
            await errors.record(conn, self.run_id, source=source, kind=kind, message=message)


async def _first(*waits: Awaitable[Any]) -> None:
    """Wait until the first of ``waits`` is done; cancel the others."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
