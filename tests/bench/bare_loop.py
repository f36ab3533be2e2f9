"""The bare golem-core loop golem-tasks is measured against: no database, no durability.

One GolemNode, one allocation and demand, the first W offers negotiated into agreements,
W activities fed from an in-memory queue, each task running ``sleep S; echo -n $((n*7))``.
Run as its own process, as a user's script would be::

    python -m tests.bench.bare_loop --tasks 600 --workers 10 --sleep 0

It prints one JSON line: wall-clock times (``time.time()``) of its first and last result,
and how many results it got. Everything it talks to is the yagna API in ``YAGNA_API_URL``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from decimal import Decimal

from golem.node import GolemNode
from golem.payload import RepositoryVmPayload
from golem.resources import Activity, Deploy, Proposal, Run, Start

from golem_tasks.images import resolve_payload

IMAGE = "9a3b5d67b0b27746283cb5f287c13eab1beaa12d92a9f536b747c7ae"


def command(n: int, sleep: float) -> str:
    """The benchmark task, the same in the bare loop and in the golem-tasks app."""
    return f"sleep {sleep:g}; echo -n $(({n}*7))"


async def _activity(proposal: Proposal) -> Activity | None:
    """Negotiate one offer into a deployed, started activity; None when it fails."""
    try:
        ours = await proposal.respond()
        theirs = await asyncio.wait_for(anext(ours.responses()), 20)
        agreement = await theirs.create_agreement()
        await agreement.confirm()
        if not await agreement.wait_for_approval():
            return None
        activity = await agreement.create_activity()
        batch = await activity.execute_commands(Deploy(), Start())
        await batch.wait(timeout=60)
        return activity
    except Exception as exc:  # a provider that fails is simply not used
        print(f"bare loop: offer {proposal.id} failed: {exc}", file=sys.stderr)
        return None


async def main(tasks: int, workers: int, sleep: float) -> dict[str, float | int]:
    todo: asyncio.Queue[int] = asyncio.Queue()
    for n in range(tasks):
        todo.put_nowait(n)
    times: list[float] = []

    async def work(activity: Activity) -> None:
        while True:
            try:
                n = todo.get_nowait()
            except asyncio.QueueEmpty:
                return
            batch = await activity.execute_commands(Run(command(n, sleep)))
            await batch.wait(timeout=60)
            if batch.events[-1].stdout != str(n * 7):
                raise RuntimeError(f"task {n}: wrong result {batch.events[-1].stdout!r}")
            times.append(time.time())

    payload = await resolve_payload(RepositoryVmPayload(IMAGE))
    async with GolemNode() as golem:
        allocation = await golem.create_allocation(Decimal(100))
        demand = await golem.create_demand(payload, allocations=[allocation])
        offers = demand.initial_proposals()
        taking = asyncio.Lock()
        hired: list[Activity] = []

        async def slot() -> None:
            """Hire one activity (the next offer that works out), then work on it."""
            while True:
                async with taking:
                    proposal = await anext(offers)
                activity = await _activity(proposal)
                if activity is not None:
                    hired.append(activity)
                    await work(activity)
                    return

        await asyncio.gather(*(slot() for _ in range(workers)))
        # Not timed: leave the providers free for the next run.
        await demand.unsubscribe()
        for activity in hired:
            await activity.destroy()
            await activity.parent.terminate()
    if len(times) != tasks:
        raise RuntimeError(f"only {len(times)} of {tasks} results")
    return {"first_result": min(times), "last_result": max(times), "results": len(times)}


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--sleep", type=float, default=0.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.tasks, args.workers, args.sleep))), flush=True)


if __name__ == "__main__":
    cli()
