"""A very short run of the devnet benchmarks, so the normal suite keeps them working."""

from __future__ import annotations

from tests.bench.devnet_load import concurrent_runs, exec_round_trips


async def test_exec_round_trips_smoke(devnet) -> None:
    result = await exec_round_trips(devnet.api_url, devnet.app_key, activities=3, seconds=1)
    assert result.batches > 10
    assert result.per_second > 10


async def test_concurrent_activities_smoke(devnet) -> None:
    ok, elapsed = await concurrent_runs(devnet.api_url, devnet.app_key, count=20, sleep=0.5)
    assert ok == 20
    assert elapsed < 5
