"""What one worker process shares between the jobs it runs: a database pool, one
GolemNode, the loaded app modules, a listener that wakes idle drivers when tasks become
pending, and a heartbeat that keeps claims alive and carries the supervisor's stop
requests to the drivers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from typing import Protocol

from golem.node import GolemNode

from golem_tasks.appmodule import App, CallableTasks, load_app
from golem_tasks.config import YagnaSettings
from golem_tasks.db.connect import open_pool
from golem_tasks.db.listen import Listener
from golem_tasks.identity import mismatch, wait_for_requestor_id
from golem_tasks.retry import is_transient
from golem_tasks.store import activities, runs, tasks
from workers.claims import ClaimBatcher


class Driver(Protocol):
    """What the heartbeat needs of an activity's driver."""

    def stop(self, reason: str) -> None: ...


logger = logging.getLogger(__name__)

HEARTBEAT_S = 3.0


class WorkerContext:
    def __init__(
        self,
        dsn: str,
        *,
        yagna: YagnaSettings | None = None,
        callables: CallableTasks | None = None,
        pool_size: int = 10,
        lease_s: float = tasks.DEFAULT_LEASE_S,
    ) -> None:
        self.dsn = dsn
        self.yagna = yagna or YagnaSettings.from_env()
        self.callables = callables
        self.lease_s = lease_s
        # host:pid names the process; the suffix keeps names apart across containers.
        self.name = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.pool_size = pool_size
        self.node = GolemNode(
            self.yagna.app_key, api_url=self.yagna.api_url, collect_payment_events=False
        )
        self.drivers: dict[str, Driver] = {}
        #: Fires for a run when one of its tasks becomes pending.
        self.pending = Listener(dsn, "listen_pending")
        self.claims: ClaimBatcher
        self._apps: dict[str, App] = {}
        self._heartbeat: asyncio.Task[None] | None = None
        #: The node id of this worker's yagna: it drives only that requestor's runs.
        self.requestor_id = ""
        self._foreign_said: set[tuple[str, str]] = set()

    async def __aenter__(self) -> WorkerContext:
        self.requestor_id = await wait_for_requestor_id(self.yagna)
        self.pool = await open_pool(self.dsn, max_size=self.pool_size)
        self.claims = ClaimBatcher(self.pool, self.lease_s)
        await self.node.start()
        await self.pending.__aenter__()
        self._heartbeat = asyncio.create_task(self._beat(), name="worker-heartbeat")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        await self.pending.__aexit__(*exc)
        await self.node.aclose()
        await self.pool.close()

    def app(self, spec: str) -> App:
        """The run's app module, imported once per process."""
        if spec not in self._apps:
            self._apps[spec] = load_app(spec, require_execute_task=False)
        return self._apps[spec]

    def refuses(self, run_id: str, owner: str | None) -> str | None:
        """Why this worker must not drive the activities of a run of requestor ``owner``
        (another requestor's)."""
        if not owner or owner == self.requestor_id:
            return None
        return mismatch(run_id, owner, self.requestor_id, self.yagna.api_url)

    async def _beat(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            try:
                await self.beat_once()
                await self.say_why_foreign_runs_are_left()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not is_transient(exc):
                    logger.exception("worker heartbeat failed")
                elif not failing:  # the database is away: say so once, keep beating
                    logger.warning("worker heartbeat failed (%s); retrying", exc)
                failing = True
            else:
                if failing:
                    logger.warning("worker heartbeat works again")
                failing = False

    async def say_why_foreign_runs_are_left(self) -> None:
        """Once per run: the jobs waiting there are another requestor's, not for us."""
        async with self.pool.connection() as conn:
            foreign = await runs.foreign(conn, self.requestor_id)
        for run_id, owner in foreign.items():
            key = (run_id, owner)
            if key not in self._foreign_said:
                self._foreign_said.add(key)
                reason = self.refuses(run_id, owner)
                logger.warning("%s: leaving its jobs to workers of %s", reason, owner)

    async def beat_once(self) -> None:
        """Renew the claims of every driven activity and pass on stop requests."""
        ids = [activity_id for activity_id in self.drivers if activity_id]
        if not ids:
            return
        async with self.pool.connection() as conn:
            await tasks.renew_leases(conn, ids, self.lease_s)
            requests = await activities.stop_requests(conn, ids)
        for activity_id, reason in requests.items():
            driver = self.drivers.get(activity_id)
            if driver is not None:
                driver.stop(reason)
