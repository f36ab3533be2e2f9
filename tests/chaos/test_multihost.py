"""Several hosts, one DSN, when hosts fail, at full size: a worker host's link down
mid-run, and a standby supervisor taking over when the run's supervisor is killed or its
host vanishes. The scenarios are in ``tests/support/multihost.py`` (``make test`` runs
them as smokes); takeover times and figures are printed (``-s``) for the notes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.multihost import Size, standby_takes_over, worker_host_link_down
from tests.support.netns import unavailable

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.timeout(900),
    pytest.mark.skipif(unavailable() is not None, reason=str(unavailable())),
]

LINK_DOWN = Size(tasks=120, sleep=0.5, providers=8, concurrency={"B": 2, "C": 4})
STANDBY = Size(tasks=80, sleep=1.0, providers=8, concurrency={"B": 3, "C": 3})


async def test_worker_host_link_down_20s(tmp_path: Path) -> None:
    # The default lease (30 s) outlasts the cut: B's claims stay B's unless it loses them.
    figures = await worker_host_link_down(tmp_path, LINK_DOWN)
    print(f"\n{figures}")


async def test_standby_takes_over_a_killed_supervisor(tmp_path: Path) -> None:
    _, figures = await standby_takes_over(tmp_path, STANDBY, cut_link=False)
    print(f"\n{figures}")


async def test_standby_takes_over_when_the_supervisor_host_vanishes(tmp_path: Path) -> None:
    _, figures = await standby_takes_over(tmp_path, STANDBY, cut_link=True)
    print(f"\n{figures}")
