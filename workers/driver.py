"""Driving one activity: create it (or take over the one already there), set it up, then
run tasks on it one at a time until there are none left or the supervisor says stop.

Every result is stored in the transaction that ends its claim. An activity that breaks
(deploy error, provider gone, tasks failing in a row) is ended with its reason and its
claimed tasks go back to the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from golem.node import GolemNode
from golem.resources import Activity, Deploy, PoolingBatch, Start

from golem_tasks.appmodule import App
from golem_tasks.db.types import Connection
from golem_tasks.errors import describe
from golem_tasks.retry import is_transient, our_side, patiently, retrying
from golem_tasks.store import activities, agreements, errors, runs, tasks
from golem_tasks.store.records import (
    ActivityStatus,
    Agreement,
    AgreementStatus,
    Run,
    RunStatus,
)
from golem_tasks.store.tasks import Claim, ClaimRequest
from workers.context import WorkerContext

logger = logging.getLogger(__name__)
T = TypeVar("T")
#: One line per stored result (`golem-tasks run` shows them arriving).
results_log = logging.getLogger("golem_tasks.results")

SETUP_TIMEOUT_S = 300.0
#: Idle drivers are woken by NOTIFY when tasks become pending; this poll is the fallback.
IDLE_POLL_S = 1.0
#: This many failed tasks in a row mean the activity, not the tasks, is broken.
FAILURES_IN_A_ROW = 3
#: How long a failed task's leftover batch may keep the activity busy.
BUSY_GRACE_S = 30.0
#: How long our own yagna may fail to answer (restarting, overloaded) before an activity
#: or a job waiting for it gives up, without blaming the provider.
OUR_DAEMON_PATIENCE_S = 120.0


class ActivityFailed(Exception):
    """The activity cannot go on; the message is its stop reason."""


class FollowUpError(Exception):
    """The app's on_result hook failed or returned something that cannot be stored."""

    def __str__(self) -> str:
        return str(self.args[0])


class ActivityRetired(Exception):
    """The activity should not take more tasks, through no fault of its provider."""


class OurDaemonDown(Exception):
    """Our own yagna daemon did not answer for too long: this job ends without blaming
    the provider, and the supervisor queues the agreement's job again."""


async def default_setup(activity: Activity) -> None:
    batch = await activity.execute_commands(Deploy(), Start())
    await batch.wait(timeout=SETUP_TIMEOUT_S)


class ActivityDriver:
    def __init__(self, ctx: WorkerContext, run: Run, agreement: Agreement) -> None:
        self.ctx = ctx
        self.run = run
        self.run_id = run.id
        self.agreement_id = agreement.id
        self.app: App = ctx.app(run.app)
        self.activity: Activity | None = None
        self.stop_reason: str | None = None
        self._stopped = asyncio.Event()
        self._current: asyncio.Task[Any] | None = None
        #: Claimed with the previous result, run next.
        self._next_claim: Claim | None = None

    # -- control ------------------------------------------------------------------------

    def stop(self, reason: str) -> None:
        """Called by the heartbeat when the supervisor wants this activity stopped."""
        if self.stop_reason is None:
            self.stop_reason = reason
            logger.info("activity %s: stop requested (%s)", self._activity_id, reason)
        self._stopped.set()
        if self._current is not None and not self._current.done():
            self._current.cancel()

    @property
    def _activity_id(self) -> str:
        return self.activity.id if self.activity else "-"

    # -- the job ------------------------------------------------------------------------

    async def drive(self) -> None:
        try:
            reused = await self._acquire()
        except ActivityFailed as exc:
            await self._give_up_agreement(str(exc))
            return
        except OurDaemonDown as exc:
            logger.warning("agreement %s: %s; its job will be queued again", self.agreement_id, exc)
            return
        if self.activity is None:
            return  # another worker drives it
        self.ctx.drivers[self.activity.id] = self
        status, reason = ActivityStatus.STOPPED, "no more tasks"
        try:
            if not reused:
                await self._setup()
            await self._work()
            if self.stop_reason:
                reason = self.stop_reason
        except ActivityFailed as exc:
            status, reason = ActivityStatus.FAILED, str(exc)
        except ActivityRetired as exc:
            reason = str(exc)
        except BaseException as exc:
            # The worker is shutting down, or this job broke: leave the activity to the next
            # job, which takes it over. A job that broke counts the attempt of the task it
            # held, so that a task that breaks every job ends failed instead of being
            # handed from job to job (and agreement to agreement) for ever.
            with contextlib.suppress(Exception):
                await asyncio.shield(self._hand_over(count_attempt=isinstance(exc, Exception)))
            raise
        finally:
            self.ctx.drivers.pop(self.activity.id, None)
        await self._end(status, reason)

    async def _acquire(self) -> bool:
        """Take over a live activity of this agreement, or create one. True when reused;
        ``self.activity`` stays None when another worker still drives it."""
        async with self.ctx.pool.connection() as conn:
            latest = await activities.latest(conn, self.agreement_id)
        if latest is not None and not latest.status.ended:
            activity = self.ctx.node.activity(latest.id)
            state = await self._state(activity)
            if latest.status is ActivityStatus.READY and state == "Ready":
                return await self._take_over(activity)
            else:
                reason = f"left in state {state} by a worker that stopped"
                with contextlib.suppress(Exception):
                    await activity.destroy()
                async with self.ctx.pool.connection() as conn:
                    await activities.end(
                        conn,
                        activity.id,
                        status=ActivityStatus.STOPPED,
                        reason=reason,
                        count_attempt=True,
                    )
        agreement = self.ctx.node.agreement(self.agreement_id)
        try:
            activity = await patiently(
                lambda: retrying(
                    lambda: agreement.create_activity(autoclose=False), what="create activity"
                ),
                what=f"agreement {self.agreement_id}: creating an activity",
                patience_s=OUR_DAEMON_PATIENCE_S,
                transient=our_side,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if our_side(exc):
                raise OurDaemonDown(
                    f"our yagna failed to create an activity: {describe(exc)}"
                ) from exc
            raise ActivityFailed(f"could not create an activity: {describe(exc)}") from exc
        # Recorded even if this job is being cancelled, so that no activity is left unknown.
        await asyncio.shield(self._record_activity(activity))
        self.activity = activity
        return False

    async def _take_over(self, activity: Activity) -> bool:
        """Drive a Ready activity whose worker died. Its heartbeat may look fresh for up to
        a lease after the death, so wait that long rather than throw the activity away."""
        deadline = asyncio.get_running_loop().time() + self.ctx.lease_s + 5
        while True:
            async with self.ctx.pool.connection() as conn:
                taken = await activities.take_over(
                    conn, activity.id, self.ctx.name, self.ctx.lease_s
                )
                if taken:
                    # The dead worker's task counts as an attempt, as an expired lease does.
                    await tasks.release_activity(
                        conn, activity.id, "its worker stopped", count_attempt=True
                    )
                    self.activity = activity
                    logger.info("activity %s: taken over", activity.id)
                    return True
            if asyncio.get_running_loop().time() > deadline:
                logger.warning("activity %s is driven by a live worker: leaving it", activity.id)
                return False
            await asyncio.sleep(2.0)

    async def _record_activity(self, activity: Activity) -> None:
        async with self.ctx.pool.connection() as conn:
            await activities.insert(
                conn,
                id=activity.id,
                run_id=self.run_id,
                agreement_id=self.agreement_id,
                worker=self.ctx.name,
            )

    async def _state(self, activity: Activity) -> str:
        try:
            state = await activity.get_state()
        except Exception as exc:
            return f"unknown ({describe(exc)})"
        return str(state.state[0])

    async def _setup(self) -> None:
        assert self.activity is not None
        setup = self.app.setup_activity or default_setup
        # As `_current`, a stop request cancels a long deploy too.
        self._current = asyncio.ensure_future(
            asyncio.wait_for(setup(self.activity), SETUP_TIMEOUT_S + 10)
        )
        try:
            await self._current
        except asyncio.CancelledError:
            if not self._stopped.is_set():
                raise
            return
        except Exception as exc:
            if await self._our_daemon_down():
                raise ActivityRetired(f"our yagna failed during deploy: {describe(exc)}") from exc
            raise ActivityFailed(f"deploy failed: {describe(exc)}") from exc
        finally:
            self._current = None
        async with self.ctx.pool.connection() as conn:
            await activities.ready(conn, self.activity.id)
        logger.info("activity %s ready", self.activity.id)

    async def _work(self) -> None:
        assert self.activity is not None
        failures = 0
        pending = self.ctx.pending.signal(self.run_id)
        request = ClaimRequest(self.activity.id)
        while not self._stopped.is_set():
            claim, self._next_claim = self._next_claim, None
            if claim is None:
                seen = pending.count  # before the claim: a task fed after it wakes us
                _, claim = await self._submit("claiming a task", request)
            if claim is None:
                if await self._nothing_left():
                    return
                await _first_of(self._stopped.wait(), pending.wait(seen), timeout=IDLE_POLL_S)
                continue
            ok = await self._run_task(claim)
            if self._stopped.is_set():
                return
            if ok is None:  # our daemon failed, not the task: nothing counts
                await self._wait_until_idle(claim.timeout_s)
                continue
            failures = 0 if ok else failures + 1
            if not ok:
                await self._wait_until_idle(claim.timeout_s)
                state = await self._state(self.activity)
                if state != "Ready":
                    raise ActivityFailed(f"activity is {state}")
                if failures >= FAILURES_IN_A_ROW:
                    raise ActivityFailed(f"{failures} tasks failed in a row on it")

    async def _wait_until_idle(self, timeout_s: float | None) -> None:
        """A failed or timed-out task may leave its batch running, and the exe-unit takes
        no other batch until it ends: wait for it a while, then retire the activity."""
        assert self.activity is not None
        if self.activity.idle:
            return
        grace = min(timeout_s or BUSY_GRACE_S, BUSY_GRACE_S)
        try:
            await asyncio.wait_for(self.activity.wait_idle(), grace)
        except asyncio.TimeoutError:
            raise ActivityRetired(
                f"a failed task's batch still ran {grace:g}s after it; the activity is busy"
            ) from None

    async def _nothing_left(self) -> bool:
        """All fed and nothing pending; with follow-ups, also nothing running that could
        still add tasks (so activities are not ended just before a result adds work)."""

        async def check(conn: Connection) -> bool:
            run = await runs.get(conn, self.run_id)
            if self.app.on_result is not None:
                left = await tasks.open_count(conn, self.run_id)
            else:
                left = await tasks.pending_count(conn, self.run_id)
            return run is not None and run.feed_done and left == 0

        return await self._db("checking for tasks left", check)

    async def _db(self, what: str, work: Callable[[Connection], Awaitable[T]]) -> T:
        """``work`` on a pooled connection, waiting out a database that restarts."""

        async def attempt() -> T:
            async with self.ctx.pool.connection() as conn:
                return await work(conn)

        return await patiently(attempt, what=f"activity {self._activity_id}: {what}")

    async def _submit(self, what: str, request: ClaimRequest) -> tuple[bool, Claim | None]:
        """``request`` through this process's claim batches, waiting out a database that
        restarts as :meth:`_db` does (a failed statement stored and claimed nothing)."""
        return await patiently(
            lambda: self.ctx.claims.submit(self.run_id, request),
            what=f"activity {self._activity_id}: {what}",
        )

    async def _store(
        self, claim: Claim, result: Any, batches: list[str], follow_ups: list[Any]
    ) -> bool:
        """Store a result (False: its claim had moved on). Without follow-ups the next task
        is claimed in the same statement, batched with the other drivers of this process."""
        what = f"storing the result of task {claim.key}"
        if follow_ups:
            # Follow-ups are stored in the transaction that stores their result.
            return await self._db(
                what, lambda conn: tasks.complete(conn, claim, result, batches, follow_ups)
            )
        request = ClaimRequest(
            claim.activity_id, claim, result, batches, not self._stopped.is_set()
        )
        stored, self._next_claim = await self._submit(what, request)
        return stored

    async def _our_daemon_down(self) -> bool:
        """Whether our own yagna fails to answer (asked about this activity)."""
        assert self.activity is not None
        try:
            await self.activity.get_state()
        except Exception as exc:
            return our_side(exc)
        return False

    async def _wait_for_our_daemon(self) -> None:
        """Wait (with back-off) until our yagna answers again; retire the activity, without
        blaming its provider, if it does not within the patience."""
        assert self.activity is not None
        activity = self.activity
        logger.warning("activity %s: our yagna does not answer; waiting for it", activity.id)
        try:
            await patiently(
                activity.get_state,
                what=f"activity {activity.id}: asking our yagna",
                patience_s=OUR_DAEMON_PATIENCE_S,
                transient=our_side,
                quiet=True,
            )
        except Exception as exc:
            if our_side(exc):
                raise ActivityRetired(
                    f"our yagna did not answer for {OUR_DAEMON_PATIENCE_S:g}s: {describe(exc)}"
                ) from exc
            raise
        logger.warning("activity %s: our yagna answers again", activity.id)

    async def _run_task(self, claim: Claim) -> bool | None:
        """Run one claimed task; store its result or its failure. True on success, None
        when our own daemon failed (the attempt is given back)."""
        assert self.activity is not None
        activity = self.activity
        known = len(activity.children)
        callable_task = (
            self.ctx.callables.get(self.run_id, claim.key) if self.ctx.callables else None
        )
        if callable_task is not None:
            work = callable_task(activity)
        elif self.app.execute_task is not None:
            work = self.app.execute_task(activity, claim.data)
        else:
            work = _missing_execute_task(self.app)
        self._current = asyncio.ensure_future(asyncio.wait_for(work, claim.timeout_s))
        error: str | None = None
        result: Any = None
        follow_ups: list[Any] = []
        try:
            result = await self._current
            tasks.check_json(result, "the result of execute_task")
            follow_ups = await self._follow_ups(claim, result)
        except asyncio.CancelledError:
            if not self._stopped.is_set():
                raise  # the worker itself is being cancelled
            error = f"stopped: {self.stop_reason}"
        except asyncio.TimeoutError:
            error = f"timed out after {claim.timeout_s:g}s"
        except Exception as exc:
            error = describe(exc)
        finally:
            self._current = None
        ran = [b for b in activity.children[known:] if isinstance(b, PoolingBatch)]
        batches = [b.id for b in ran]
        forget_batches(self.ctx.node, activity, ran)
        if error is None:
            try:
                stored = await self._store(claim, result, batches, follow_ups)
            except Exception as exc:
                if is_transient(exc):
                    raise  # the database stayed away: this job ends, the claim expires
                # PostgreSQL refused the result: a failed attempt like any other, so that
                # the task ends failed after its last one instead of wedging the run.
                error = f"its result could not be stored: {describe(exc)}"
            else:
                if stored:
                    results_log.info("task %s: %s", claim.key, _preview(result))
                    if follow_ups:
                        logger.info("task %s added %d follow-up tasks", claim.key, len(follow_ups))
                return True
        if self._stopped.is_set():
            await self._db(
                "giving back a stopped task",
                lambda conn: tasks.release_activity(conn, activity.id, error, count_attempt=False),
            )
            return False
        if await self._our_daemon_down():
            # Not the task's fault nor the provider's: give the attempt back and wait.
            await self._db(
                "giving back a task our yagna failed",
                lambda conn: tasks.release_activity(
                    conn, activity.id, f"our yagna failed: {error}", count_attempt=False
                ),
            )
            await self._wait_for_our_daemon()
            return None
        status = await self._db(
            f"recording the failure of task {claim.key}",
            lambda conn: tasks.fail(conn, claim, error, batches),
        )
        logger.info("task %s failed on %s (%s): %s", claim.key, activity.id, status, error)
        return False

    async def _follow_ups(self, claim: Claim, result: Any) -> list[Any]:
        """The app's follow-up tasks for this result; an app error fails the attempt."""
        try:
            follow_ups = await self.app.follow_ups(self.run_id, claim.key, claim.data, result)
            for index, data in enumerate(follow_ups):
                tasks.check_json(data, f"follow-up #{index} from on_result")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise FollowUpError(f"on_result failed: {describe(exc)}") from exc
        return follow_ups

    # -- endings ------------------------------------------------------------------------

    async def _end(self, status: ActivityStatus, reason: str) -> None:
        assert self.activity is not None
        with contextlib.suppress(Exception):
            await retrying(self.activity.destroy, what="destroy activity", attempts=3)
        async with self.ctx.pool.connection() as conn:
            await activities.end(
                conn,
                self.activity.id,
                status=status,
                reason=reason,
                count_attempt=status is ActivityStatus.FAILED,
            )
            if status is ActivityStatus.FAILED:
                await errors.record(
                    conn,
                    self.run_id,
                    source="worker",
                    kind="activity",
                    message=reason,
                    agreement_id=self.agreement_id,
                    activity_id=self.activity.id,
                )
        logger.info("activity %s %s: %s", self.activity.id, status, reason)

    async def _hand_over(self, *, count_attempt: bool = False) -> None:
        """Give back claims and keep the activity for another worker: on shutdown of this
        worker (the attempt is given back) or when this job broke (it counts)."""
        if self.activity is None:
            return
        reason = "its job broke" if count_attempt else "its worker stopped"
        async with self.ctx.pool.connection() as conn:
            await tasks.release_activity(
                conn, self.activity.id, reason, count_attempt=count_attempt
            )
            await activities.release_driver(conn, self.activity.id, self.ctx.name)

    async def _give_up_agreement(self, reason: str) -> None:
        async with self.ctx.pool.connection() as conn:
            await agreements.request_end(conn, self.agreement_id, reason, avoid=True)
            await errors.record(
                conn,
                self.run_id,
                source="worker",
                kind="activity",
                message=reason,
                agreement_id=self.agreement_id,
            )
        logger.warning("agreement %s: %s", self.agreement_id, reason)


def forget_batches(node: GolemNode, activity: Activity, batches: list[PoolingBatch]) -> None:
    """golem-core keeps every batch an activity ran (``Activity.children`` and the node's
    resource index) for the node's life: a million tasks would be a million batches in
    memory, and every ``activity.children`` copies the list. Once a task's batches are
    recorded, the finished ones are let go (a batch still running stays)."""
    index = node._resources.get(PoolingBatch, {})
    for batch in batches:
        if batch.done:
            with contextlib.suppress(ValueError):
                activity._children.remove(batch)
            index.pop(batch.id, None)


def _preview(result: Any, width: int = 80) -> str:
    text = repr(result)
    return text if len(text) <= width else text[: width - 3] + "..."


async def _first_of(*waits: Awaitable[Any], timeout: float) -> None:
    """Wait until one of ``waits`` is done or ``timeout`` passed; cancel the rest."""
    waiting = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waiting:
            task.cancel()


async def _missing_execute_task(app: App) -> Any:
    raise RuntimeError(f"app {app.spec} has no execute_task and this task is not a callable")


async def drive_agreement(ctx: WorkerContext, run_id: str, agreement_id: str) -> None:
    """The body of one "drive this activity" job."""
    async with ctx.pool.connection() as conn:
        run = await runs.get(conn, run_id)
        agreement = await agreements.get(conn, agreement_id)
    if run is None or agreement is None:
        logger.warning("job for unknown run %s / agreement %s: nothing to do", run_id, agreement_id)
        return
    if run.status is not RunStatus.RUNNING or agreement.status is not AgreementStatus.APPROVED:
        return
    if agreement.terminate_reason:
        return
    refused = ctx.refuses(run.id, run.requestor_id)
    if refused is not None:
        # Only reachable through a --queue of another requestor, which the worker refuses;
        # the supervisor dispatches the agreement again to its own queue.
        logger.error("%s: not driving agreement %s", refused, agreement_id)
        return
    await ActivityDriver(ctx, run, agreement).drive()
