"""A driver lets golem-core forget the batches of finished tasks, so that a long run's
memory does not grow with every task it ran."""

from __future__ import annotations

from decimal import Decimal

import pytest
from golem.payload import RepositoryVmPayload
from golem.resources import Deploy, PoolingBatch, Run, Start

from golem_tasks.images import IMAGE_REPO_ENV, resolve_payload
from workers.driver import forget_batches

IMAGE = "9a3b5d67b0b27746283cb5f287c13eab1beaa12d92a9f536b747c7ae"


async def test_finished_batches_are_forgotten_running_ones_kept(
    devnet, golem_node, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(IMAGE_REPO_ENV, devnet.image_repo)
    payload = await resolve_payload(RepositoryVmPayload(image_hash=IMAGE))
    async with golem_node() as golem:
        allocation = await golem.create_allocation(Decimal("1"))
        demand = await golem.create_demand(payload, allocations=[allocation])
        proposal = await anext(demand.initial_proposals())
        theirs = await anext((await proposal.respond()).responses())
        agreement = await theirs.create_agreement()
        await agreement.confirm()
        assert await agreement.wait_for_approval()
        activity = await agreement.create_activity()
        await (await activity.execute_commands(Deploy(), Start())).wait(timeout=30)
        for n in range(20):
            known = len(activity.children)
            batch = await activity.execute_commands(Run(f"echo {n}"))
            await batch.wait(timeout=30)
            ran = [b for b in activity.children[known:] if isinstance(b, PoolingBatch)]
            assert ran == [batch]
            forget_batches(golem, activity, ran)
        # Only the set-up batch is left (nothing forgot it); no task's batch is kept.
        assert len([c for c in activity.children if isinstance(c, PoolingBatch)]) == 1
        assert len(golem.all_resources(PoolingBatch)) == 1

        running = await activity.execute_commands(Run("sleep 5"))
        forget_batches(golem, activity, [running])
        assert running in activity.children  # still running: kept
        assert not activity.idle
        await activity.destroy()
        await agreement.terminate("done")
