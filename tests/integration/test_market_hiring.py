"""Hiring does not wait for the supervisor's next tick: offers that arrive after ``hire``
and negotiation slots that free up are used at once."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from golem.node import GolemNode
from golem.payload import RepositoryVmPayload

from golem_tasks.clock import SystemClock
from golem_tasks.db.connect import open_pool
from golem_tasks.images import IMAGE_REPO_ENV
from golem_tasks.pricing import PriceLimits
from golem_tasks.supervisor.allocations import Allocations
from golem_tasks.supervisor.market import MAX_PARALLEL_NEGOTIATIONS, Market, Offer
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


class RecordingMarket(Market):
    """Remembers what each negotiation it started reserved of the budget."""

    started: list[Decimal]

    async def _negotiate(self, offer: Offer) -> None:
        self.started.append(offer.reserve)
        await super()._negotiate(offer)


async def _market(net: Any, pool: Any, node: GolemNode, on_agreement: Any) -> RecordingMarket:
    clock = SystemClock()
    allocations = Allocations(
        node, pool, run_id="r1", amount=Decimal(1), network="holesky", driver="erc20", clock=clock
    )
    market = RecordingMarket(
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
    market.started = []
    return market


async def _offers(market: Market, count: int) -> None:
    for _ in range(300):
        if len(market.offers) >= count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{len(market.offers)} offers, waited for {count}")


async def test_hiring_between_ticks_stays_within_the_budget_room(
    installed_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What ``hire`` could not fill is hired as negotiations end and offers arrive, but
    only within the budget room the tick gave it, less what it reserved since."""
    await make_run(installed_dsn, activities=0)
    async with devnet(providers=8, seed=5) as net:
        monkeypatch.setenv(IMAGE_REPO_ENV, net.image_repo)
        pool = await open_pool(installed_dsn, max_size=4)
        node = GolemNode(app_key=net.app_key, api_url=net.api_url)
        agreed: list[str] = []

        async def on_agreement(agreement_id: str) -> None:
            agreed.append(agreement_id)

        async with node:
            market = await _market(net, pool, node, on_agreement)
            try:
                assert await market.hire(0, set(), set()) == 0  # publishes the demand
                await _offers(market, 6)
                reserves = sorted(offer.reserve for offer in market.offers.values())
                assert reserves[0] > 0
                room = reserves[0] + reserves[1] + reserves[2] / 2  # two fit, not three
                first = await market.hire(8, set(), set(), room=room)
                assert 1 <= first <= 2
                for _ in range(100):  # the negotiations end, each trying to hire more
                    if len(agreed) >= first and not market.negotiating:
                        break
                    await asyncio.sleep(0.1)
                await asyncio.sleep(1.0)  # offers still arriving meanwhile
                assert len(agreed) == len(market.started) < 8
                assert sum(market.started) <= room
                # What stopped the hiring is the room: no offer left would fit in it.
                left = room - sum(market.started)
                assert market.offers and all(o.reserve > left for o in market.offers.values())
            finally:
                await market.close()
                await pool.close()


async def test_hold_stops_hiring_between_ticks(
    installed_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the run stops (a budget stop too) or its supervisor loses the run's lock, an
    offer that arrives is not hired."""
    await make_run(installed_dsn, activities=0)
    async with devnet(providers=4, seed=5) as net:
        monkeypatch.setenv(IMAGE_REPO_ENV, net.image_repo)
        pool = await open_pool(installed_dsn, max_size=4)
        node = GolemNode(app_key=net.app_key, api_url=net.api_url)
        agreed: list[str] = []

        async def on_agreement(agreement_id: str) -> None:
            agreed.append(agreement_id)

        async with node:
            market = await _market(net, pool, node, on_agreement)
            try:
                assert await market.hire(4, set(), set()) == 0  # no offer yet
                market.hold()
                await _offers(market, 4)
                await asyncio.sleep(0.5)
                assert market.started == [] and agreed == []
            finally:
                await market.close()
                await pool.close()
