"""One allocation per hour of the run, each for the hourly budget."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from golem.node import GolemNode
from golem.resources import Allocation
from psycopg_pool import AsyncConnectionPool

from golem_tasks.clock import Clock
from golem_tasks.db import access

logger = logging.getLogger(__name__)

HOUR = timedelta(hours=1)


class Allocations:
    def __init__(
        self,
        node: GolemNode,
        pool: AsyncConnectionPool,
        *,
        run_id: str,
        run_start: datetime,
        amount: Decimal,
        network: str,
        driver: str,
        clock: Clock,
    ) -> None:
        self.node = node
        self.pool = pool
        self.run_id = run_id
        self.run_start = run_start
        self.amount = amount
        self.network = network
        self.driver = driver
        self.clock = clock

    def period_start(self, now: datetime) -> datetime:
        """The start of the run-hour that contains ``now``."""
        hours = max(0, int((now - self.run_start) / HOUR))
        return self.run_start + hours * HOUR

    async def current(self) -> Allocation:
        """The allocation of the current run-hour, created (and stored) when missing."""
        now = self.clock.now()
        async with self.pool.connection() as conn:
            row = await access.one(conn, "current_allocation", run_id=self.run_id, now=now)
        if row is not None:
            return self.node.allocation(row["id"])
        allocation = await self.node.create_allocation(
            self.amount, network=self.network, driver=self.driver, autoclose=False
        )
        data = await allocation.get_data()
        async with self.pool.connection() as conn:
            await access.execute(
                conn,
                "insert_allocation",
                id=allocation.id,
                run_id=self.run_id,
                amount=self.amount,
                platform=data.payment_platform or "",
                address=data.address,
                period_start=self.period_start(now),
            )
        logger.info("allocation %s: %s for the hour from %s", allocation.id, self.amount, now)
        return allocation

    async def release_past(self) -> None:
        """Release the allocations of hours that ended over an hour ago: what they
        reserved is not needed again (later documents are accepted from newer ones)."""
        cutoff = self.clock.now() - 2 * HOUR
        async with self.pool.connection() as conn:
            rows = await access.all_rows(conn, "unreleased_allocations", run_id=self.run_id)
        await self._release([row for row in rows if row["period_start"] <= cutoff])

    async def release_all(self) -> None:
        async with self.pool.connection() as conn:
            rows = await access.all_rows(conn, "unreleased_allocations", run_id=self.run_id)
        await self._release(rows)

    async def _release(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            try:
                await self.node.allocation(row["id"]).release()
            except Exception as exc:  # released anyway when it times out on yagna
                logger.warning("could not release allocation %s: %s", row["id"], exc)
                continue
            async with self.pool.connection() as conn:
                await access.execute(conn, "mark_allocation_released", id=row["id"])
