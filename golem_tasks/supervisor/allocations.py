"""One allocation per hour of the run, each for the hourly budget."""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

from golem.node import GolemNode
from golem.resources import Allocation

from golem_tasks.clock import Clock
from golem_tasks.db.types import Pool
from golem_tasks.retry import is_transient
from golem_tasks.store import ledger

logger = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
RELEASE_GRACE = timedelta(minutes=10)


class Allocations:
    """Run-hours are counted on the supervisor's clock from the first allocation; each
    hour's allocation is released ten minutes after the hour ends, so at most two are held
    at once (one just after an hour begins)."""

    def __init__(
        self,
        node: GolemNode,
        pool: Pool,
        *,
        run_id: str,
        amount: Decimal,
        network: str,
        driver: str,
        clock: Clock,
    ) -> None:
        self.node = node
        self.pool = pool
        self.run_id = run_id
        self.amount = amount
        self.network = network
        self.driver = driver
        self.clock = clock

    async def current(self) -> Allocation:
        """The allocation of the current run-hour, created (and stored) when missing, or
        made again when the budget changed (a run resumed with another --budget)."""
        now = self.clock.now()
        async with self.pool.connection() as conn:
            stored = await ledger.current_allocation(conn, self.run_id, now)
            first = await ledger.first_allocation_start(conn, self.run_id)
        if stored is not None and stored.amount == self.amount:
            return self.node.allocation(stored.id)
        anchor = first or now
        period_start = anchor + max(0, int((now - anchor) / HOUR)) * HOUR
        released: set[str] = set()
        try:
            allocation = await self._create()
        except Exception as exc:
            async with self.pool.connection() as conn:
                held = await ledger.unreleased_allocations(conn, self.run_id)
            if is_transient(exc) or not held:
                raise
            # The account cannot fund a new hour while the past one's allocation is held
            # ("Insufficient funds"): release it now (what was decided under it is paid
            # from the current one) rather than fail on every tick.
            logger.warning(
                "no allocation for the new hour (%s); releasing %d held before", exc, len(held)
            )
            await self._release(held)
            released = {each.id for each in held}
            allocation = await self._create()
        data = await allocation.get_data()
        async with self.pool.connection() as conn:
            await ledger.insert_allocation(
                conn,
                id=allocation.id,
                run_id=self.run_id,
                amount=self.amount,
                platform=data.payment_platform or "",
                address=data.address,
                period_start=period_start,
            )
        logger.info("allocation %s: %s for the hour from %s", allocation.id, self.amount, now)
        if stored is not None and stored.id not in released:  # superseded by the new budget
            await self._release([stored])
        return allocation

    async def _create(self) -> Allocation:
        return await self.node.create_allocation(
            self.amount, network=self.network, driver=self.driver, autoclose=False
        )

    async def release_past(self) -> None:
        """Release allocations whose hour ended over ten minutes ago."""
        cutoff = self.clock.now() - HOUR - RELEASE_GRACE
        async with self.pool.connection() as conn:
            held = await ledger.unreleased_allocations(conn, self.run_id)
        await self._release([each for each in held if each.period_start <= cutoff])

    async def release_all(self) -> None:
        async with self.pool.connection() as conn:
            held = await ledger.unreleased_allocations(conn, self.run_id)
        await self._release(held)

    async def _release(self, held: list[ledger.Allocation]) -> None:
        for each in held:
            try:
                await self.node.allocation(each.id).release()
            except Exception as exc:  # released anyway when it times out on yagna
                logger.warning("could not release allocation %s: %s", each.id, exc)
                continue
            async with self.pool.connection() as conn:
                await ledger.allocation_released(conn, each.id)
