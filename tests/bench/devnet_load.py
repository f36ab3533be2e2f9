"""Load generators for the devnet benchmarks: exec round trips and concurrent activities.

The client speaks raw HTTP (aiohttp) so the measurement is the devnet's, not golem-core's.
Everything targets 127.0.0.1 and is bounded in count and time.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from golem_tasks.devnet.process import cpu_seconds
from tests.devnet.flows import ACTIVITY, DEPLOY_START, Api, activity, agreement, run, run_script

#: Providers that serve many agreements at once, so one devnet holds hundreds of activities.
PROFILE_TOML = """
[[group]]
name = "bench"
count = 8
max_agreements = 100000
"""
ECHO = json.dumps(
    [{"run": {"entry_point": "/bin/echo", "args": ["hi"], "capture": {"stdout": {"stream": {}}}}}]
)


def write_profile(directory: Path) -> Path:
    path = directory / "bench-profile.toml"
    path.write_text(PROFILE_TOML)
    return path


@dataclass(frozen=True)
class RoundTrips:
    batches: int
    seconds: float
    devnet_cpu: float | None  # share of one core used by the devnet process

    @property
    def per_second(self) -> float:
        return self.batches / self.seconds


def _cpu_seconds(pid: int) -> float:
    """The devnet process's own CPU time (not its commands')."""
    return cpu_seconds(pid, children=False)


async def ready_activities(api: Api, count: int) -> list[str]:
    """``count`` deployed and started activities (one agreement each)."""

    async def one() -> str:
        agreement_id, _, _ = await agreement(api)
        activity_id = await activity(api, agreement_id)
        await run_script(api, activity_id, DEPLOY_START)
        return activity_id

    semaphore = asyncio.Semaphore(50)

    async def bounded() -> str:
        async with semaphore:
            return await one()

    return list(await asyncio.gather(*(bounded() for _ in range(count))))


async def exec_round_trips(
    api_url: str, app_key: str, activities: int, seconds: float, devnet_pid: int | None = None
) -> RoundTrips:
    """Each activity runs ``/bin/echo`` batches back to back: exec, then poll until done."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        api = Api(session, api_url, app_key)
        ids = await ready_activities(api, activities)
        stop = asyncio.Event()
        done = [0]

        async def loop(activity_id: str) -> None:
            path = f"{ACTIVITY}/activity/{activity_id}/exec"
            while not stop.is_set():
                batch = await api.ok("POST", path, json_body={"text": ECHO})
                while True:
                    results = await api.ok("GET", f"{path}/{batch}", params={"timeout": 5})
                    if results and results[-1]["isBatchFinished"]:
                        assert results[-1]["stdout"] == "hi\n", results
                        break
                done[0] += 1

        cpu_before = _cpu_seconds(devnet_pid) if devnet_pid else None
        started = time.monotonic()
        tasks = [asyncio.create_task(loop(activity_id)) for activity_id in ids]
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - started
        cpu = (
            (_cpu_seconds(devnet_pid) - cpu_before) / elapsed
            if devnet_pid and cpu_before is not None
            else None
        )
        return RoundTrips(done[0], elapsed, cpu)


async def concurrent_runs(
    api_url: str, app_key: str, count: int, sleep: float
) -> tuple[int, float]:
    """``count`` activities each run ``sleep`` at the same time; (finished ok, seconds)."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        api = Api(session, api_url, app_key)
        ids = await ready_activities(api, count)
        started = time.monotonic()
        results = await asyncio.gather(
            *(run_script(api, i, [run(f"sleep {sleep}; echo done")], timeout=120) for i in ids)
        )
        elapsed = time.monotonic() - started
        return sum(r[-1].get("stdout") == "done\n" for r in results), elapsed
