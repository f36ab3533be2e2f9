"""Devnet fixtures: one running devnet per session (real HTTP on 127.0.0.1), API clients.

The session devnet holds several provider groups, each on its own subnet, so a test picks
its providers by subnet: ``public`` holds healthy providers, the others inject one fault
each. Tests that need their own clock speed or profile start a small devnet of their own
(``start_devnet``); starting one takes milliseconds.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from golem_tasks.devnet import Devnet
from golem_tasks.devnet.profile import Faults, Group, Profile, ProviderSpec
from tests.devnet.flows import Api

#: Debit notes every 2 s of real time at the default 120 s interval.
SESSION_TIME_SCALE = 60.0


def group(name: str, count: int = 2, **spec: Any) -> Group:
    faults = spec.pop("faults", {})
    subnet = spec.pop("subnet", name)
    return Group(
        count=count,
        spec=ProviderSpec(name=name, subnet=subnet, faults=Faults(**faults), **spec),
    )


SESSION_PROFILE = Profile(
    (
        group("healthy", count=6, subnet="public", price_start=0.001, max_agreements=1000),
        group("rejectprop", faults={"reject_proposal": 1.0}),
        group("rejectagr", faults={"reject_agreement": 1.0}),
        group("silent", faults={"agreement_timeout": 1.0}),
        group("nodeploy", faults={"deploy_failure": 1.0}),
        group("dying", faults={"die_after_sec": 60.0}),
        group("failing", faults={"command_failure": 1.0}),
        group("slow", faults={"slowdown": 3.0}),
        group("laggy", faults={"api_latency_sec": 0.3}),
        group("erratic", faults={"error_rate": 1.0}),
        group("bigmem", count=1, memory_gib=64.0, cpu_threads=32),
    )
)


@pytest.fixture(scope="session")
def recorded() -> list[tuple[str, str, int, Any]]:
    """Every (method, path, status, body) the session devnet answered."""
    return []


@pytest.fixture(scope="session")
async def devnet(recorded: list) -> AsyncIterator[Devnet]:
    def record(method: str, path: str, status: int, body: Any) -> None:
        recorded.append((method, path, status, body))

    async with Devnet(
        seed=1, port=0, profile=SESSION_PROFILE, time_scale=SESSION_TIME_SCALE, recorder=record
    ) as net:
        yield net


@pytest.fixture(scope="session")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def api(devnet: Devnet, http: aiohttp.ClientSession) -> Api:
    return Api(http, devnet.api_url, devnet.app_key)


@pytest.fixture
def golem_node(devnet: Devnet) -> Callable[..., Any]:
    """``async with golem_node() as golem``: a GolemNode talking to the session devnet."""
    from golem.node import GolemNode

    def make(net: Devnet | None = None, **kwargs: Any) -> GolemNode:
        net = net or devnet
        return GolemNode(app_key=net.app_key, api_url=net.api_url, **kwargs)

    return make


@pytest.fixture
def start_devnet() -> Callable[..., Any]:
    """``async with start_devnet(...) as net``: a private devnet for one test."""

    @contextlib.asynccontextmanager
    async def start(**kwargs: Any) -> AsyncIterator[Devnet]:
        kwargs.setdefault("seed", 7)
        kwargs.setdefault("port", 0)
        async with Devnet(**kwargs) as net:
            yield net

    return start
