"""The long fuzz of the devnet's REST API: random cases, many per operation.

``GOLEM_TASKS_FUZZ_EXAMPLES`` sets the cases per operation and generation mode (default
100, about 10 000 requests); each run draws new ones, so repeated runs explore further.
"""

from __future__ import annotations

import os

import pytest

from tests.devnet.fuzz import TIME_SCALE, ThreadedDevnet, fuzz, real_objects, served_operation_ids


@pytest.mark.chaos
@pytest.mark.timeout(3600)
def test_long_fuzz_of_the_devnet() -> None:
    examples = int(os.environ.get("GOLEM_TASKS_FUZZ_EXAMPLES", "100"))
    with ThreadedDevnet(providers=5, seed=2, port=0, time_scale=TIME_SCALE) as devnet:
        assert devnet.net is not None
        ids = devnet.run(real_objects(devnet.net))
        outcome = fuzz(devnet.net, ids, examples=examples, derandomize=False)
    assert not outcome.failures, "\n\n".join(outcome.failures[:20])
    assert len(outcome.requests) == len(served_operation_ids())
