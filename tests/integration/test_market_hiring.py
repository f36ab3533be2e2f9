"""Hiring does not wait for the supervisor's next tick: offers that arrive after ``hire``
and negotiation slots that free up are used at once."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from golem.node import GolemNode
from golem.payload import RepositoryVmPayload

from golem_tasks.clock import SystemClock
from golem_tasks.db.connect import open_pool
from golem_tasks.images import IMAGE_REPO_ENV
from golem_tasks.pricing import PriceLimits
from golem_tasks.supervisor.allocations import Allocations
from golem_tasks.supervisor.market import MAX_PARALLEL_NEGOTIATIONS, Market
from tests.helpers import make_run
from tests.integration.pipeline_support import devnet

pytestmark = pytest.mark.timeout(120)
IMAGE = "9a3b5d67b0b27746283cb5f287c13eab1beaa12d92a9f536b747c7ae"


async def test_one_hire_call_fills_every_slot_as_offers_arrive(
    installed_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    wanted = MAX_PARALLEL_NEGOTIATIONS + 3
    await make_run(installed_dsn, activities=0)
    agreed: list[str] = []
    async with devnet(providers=wanted + 2, seed=5) as net:
        monkeypatch.setenv(IMAGE_REPO_ENV, net.image_repo)
        pool = await open_pool(installed_dsn, max_size=4)
        node = GolemNode(app_key=net.app_key, api_url=net.api_url)
        async with node:
            clock = SystemClock()
            allocations = Allocations(
                node,
                pool,
                run_id="r1",
                amount=Decimal(1),
                network="holesky",
                driver="erc20",
                clock=clock,
            )

            all_agreed = asyncio.Event()

            async def on_agreement(agreement_id: str) -> None:
                agreed.append(agreement_id)
                if len(agreed) >= wanted:
                    all_agreed.set()

            market = Market(
                node,
                pool,
                run_id="r1",
                payload=RepositoryVmPayload(IMAGE),
                subnet="public",
                allocations=allocations,
                limits=PriceLimits(),
                demand_ttl_s=1800,
                agreement_lifetime_s=3600,
                debit_note_interval_s=120,
                payment_timeout_s=1800,
                clock=clock,
                on_agreement=on_agreement,
            )
            try:
                # The demand is published by this call: no offer is there yet.
                assert await market.hire(wanted, set(), set()) == 0
                await asyncio.wait_for(all_agreed.wait(), 60)
                await asyncio.sleep(0.5)
                assert len(agreed) == wanted  # and not one more
                # The supervisor counts these as busy even before it sees them stored.
                assert len(market.take_agreed()) == wanted
                assert market.take_agreed() == set()
            finally:
                await market.close()
                await pool.close()
