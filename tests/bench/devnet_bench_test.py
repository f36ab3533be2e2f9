"""Devnet benchmarks (``make bench``): exec round trips per second, concurrent activities.

The devnet runs as its own process (``golem-tasks devnet``), as it does beside a real
pipeline; the load generator runs in the test process. Results are printed and recorded as
test properties. Targets on a 2-core machine: 500 short ``run`` batches/s and 200
concurrent activities.
"""

from __future__ import annotations

import pytest

from golem_tasks.devnet.detached import DevnetProcess
from tests.bench.devnet_load import concurrent_runs, exec_round_trips, write_profile

pytestmark = pytest.mark.bench


@pytest.fixture
async def devnet_process(tmp_path):
    async with DevnetProcess(profile=write_profile(tmp_path), time_scale=10) as net:
        yield net


@pytest.mark.parametrize("activities", [20, 100])
async def test_exec_round_trips_per_second(
    devnet_process, activities: int, record_property, capsys, bench_report
) -> None:
    result = await exec_round_trips(
        devnet_process.api_url,
        devnet_process.app_key,
        activities=activities,
        seconds=10,
        devnet_pid=devnet_process.pid,
    )
    record_property("batches_per_second", round(result.per_second))
    with capsys.disabled():
        print(
            f"\n[devnet bench] {activities} activities: {result.per_second:.0f} exec round "
            f"trips/s ({result.batches} batches in {result.seconds:.1f}s, devnet process at "
            f"{(result.devnet_cpu or 0) * 100:.0f}% of one core)"
        )
    bench_report.add(
        "The devnet alone (its own process, raw HTTP load)",
        f"exec round trips/s with {activities} activities (`/bin/echo` batch, then results)",
        f"{result.per_second:.0f} (devnet process at {(result.devnet_cpu or 0) * 100:.0f}% "
        "of one core)",
        "≥ 500",
        result.per_second >= 500,
    )
    assert result.per_second >= 500  # the README's claim


@pytest.mark.parametrize("count", [200, 500])
async def test_concurrent_activities(
    devnet_process, count: int, record_property, capsys, bench_report
) -> None:
    ok, elapsed = await concurrent_runs(
        devnet_process.api_url, devnet_process.app_key, count=count, sleep=3
    )
    record_property("concurrent_ok", ok)
    with capsys.disabled():
        print(
            f"\n[devnet bench] {count} concurrent activities, 'sleep 3': {ok} ok in {elapsed:.2f}s"
        )
    bench_report.add(
        "The devnet alone (its own process, raw HTTP load)",
        f"{count} concurrent activities each running `sleep 3`",
        f"{ok} ok in {elapsed:.1f} s",
        f"all {count}, < 13 s",
        ok == count and elapsed < 13,
    )
    assert ok == count
    assert elapsed < 3 + 10
