"""The end of a run: activities stopped, the demand withdrawn, agreements terminated,
invoices waited for and paid, allocations released, the run's status stored."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from dataclasses import dataclass

from golem.node import GolemNode

from golem_tasks.db.types import Pool
from golem_tasks.store import activities, agreements, runs, tasks
from golem_tasks.store.records import ActivityStatus, RunStatus
from golem_tasks.supervisor.agreements import Agreements
from golem_tasks.supervisor.allocations import Allocations
from golem_tasks.supervisor.market import Market
from golem_tasks.supervisor.outcome import EXIT_BUDGET, RunOutcome
from golem_tasks.supervisor.payments import Payments

logger = logging.getLogger(__name__)

#: At a budget stop, workers get this long to end their activities before the supervisor
#: destroys them itself (within budget.STOP_MARGIN_S of the decision).
BUDGET_STOP_WAIT_S = 5.0


@dataclass(frozen=True)
class Stop:
    """Why the run stops, the status it ends with, and the exit status."""

    reason: str
    status: RunStatus
    code: int


@dataclass
class Shutdown:
    """Everything the end of a run touches."""

    node: GolemNode
    pool: Pool
    run_id: str
    market: Market
    payments: Payments
    allocations: Allocations
    agreements: Agreements
    #: How long workers get to end their activities, and invoices to arrive.
    stop_wait_s: float
    invoice_wait_s: float

    async def run(self, stop: Stop) -> RunOutcome:
        reason = stop.reason
        # Each step is tried even if an earlier one failed: a database or yagna blip at
        # the end must not leave agreements running or invoices unpaid.
        await best_effort("ask activities to stop", self._ask_all_to_stop(reason))
        await best_effort("withdraw the demand", self.market.close())
        await best_effort("end activities", self._wait_for_activities(stop))
        await best_effort("terminate agreements", self.agreements.terminate_all(reason))
        await best_effort("wait for invoices", self._wait_for_invoices())
        await self.payments.drain(self.invoice_wait_s)
        await best_effort("release allocations", self.allocations.release_all())
        async with self.pool.connection() as conn:
            counts = await tasks.counts(conn, self.run_id)
            await runs.set_status(conn, self.run_id, stop.status, reason)
        logger.info("run %s %s: %s", self.run_id, stop.status, reason)
        return RunOutcome(self.run_id, stop.status, reason, counts, stop.code)

    async def _ask_all_to_stop(self, reason: str) -> None:
        async with self.pool.connection() as conn:
            await runs.set_status(conn, self.run_id, RunStatus.STOPPING, reason)
            await activities.request_run_stop(conn, self.run_id, reason)

    async def _wait_for_activities(self, stop: Stop) -> None:
        """Give workers time to end their activities; end the rest from here."""
        wait = self.stop_wait_s
        if stop.code == EXIT_BUDGET:  # their charges are kept only this long ahead
            wait = min(wait, BUDGET_STOP_WAIT_S)
        deadline = asyncio.get_running_loop().time() + wait
        while True:
            async with self.pool.connection() as conn:
                left = await activities.unfinished(conn, self.run_id)
            if not left:
                return
            if asyncio.get_running_loop().time() >= deadline:
                break
            await asyncio.sleep(0.5)
        for activity in left:
            logger.warning("activity %s did not stop in time; destroying it", activity.id)
            with contextlib.suppress(Exception):
                await self.node.activity(activity.id).destroy()
            async with self.pool.connection() as conn:
                await activities.end(
                    conn,
                    activity.id,
                    status=ActivityStatus.STOPPED,
                    reason=stop.reason,
                    count_attempt=False,
                )

    async def _wait_for_invoices(self) -> None:
        deadline = asyncio.get_running_loop().time() + self.invoice_wait_s
        while True:
            async with self.pool.connection() as conn:
                missing = await agreements.without_invoice(conn, self.run_id)
            if not missing:
                return
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                logger.warning("%d agreements sent no invoice in time", len(missing))
                return
            self.payments.invoice_seen.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.payments.invoice_seen.wait(), min(remaining, 1.0))


async def best_effort(what: str, step: Awaitable[None]) -> None:
    try:
        await step
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("could not %s", what)
