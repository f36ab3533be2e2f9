"""The run-lock watchdog ends with the supervisor's loop even when its cancellation is
lost, as Python 3.11's ``asyncio.wait_for`` loses one that arrives just as the awaited
ping ends (the run then never shut down)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from golem_tasks.supervisor import supervisor as supervisor_module
from golem_tasks.supervisor.options import RunOptions
from golem_tasks.supervisor.supervisor import Supervisor

# Before the fix the loop waited for the watchdog for ever.
pytestmark = pytest.mark.timeout(30)


class CancellationLosingLock:
    """The lock's ``check`` as wait_for behaves on Python 3.11 in that race: the ping
    has answered, so the cancellation is dropped and the answer returned."""

    def __init__(self) -> None:
        self.pings = 0

    async def check(self) -> bool:
        self.pings += 1
        try:
            await asyncio.sleep(0.02)
        except asyncio.CancelledError:
            return True
        return True


async def test_the_watchdog_ends_with_the_loop_even_if_its_cancellation_is_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(supervisor_module, "LOCK_PING_S", 0.0)
    sup = Supervisor(RunOptions(app="examples/hello_world.py"), "dbname=unused")
    lock = CancellationLosingLock()
    sup.lock = lock  # type: ignore[assignment]

    async def ticks(*args: Any) -> None:
        await asyncio.sleep(0.2)  # a short run

    monkeypatch.setattr(sup, "_ticks", ticks)
    await asyncio.wait_for(sup._loop(None, None, None), 5)  # type: ignore[arg-type]
    assert lock.pings > 1
