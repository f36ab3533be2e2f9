"""The run's lock: one supervisor acts on a run at a time.

It is a PostgreSQL session advisory lock held on a connection of its own, so a killed
supervisor releases it at once. A database restart releases it too: the holder then
stops acting, reconnects with back-off and takes the lock again, unless another
supervisor took it first (then it has lost the run and must stop without touching it).
Everything about the lock lives here, so that a standby supervisor can build on it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import psycopg

from golem_tasks.config import describe_dsn
from golem_tasks.db.connect import connect
from golem_tasks.db.types import Connection
from golem_tasks.errors import UserError
from golem_tasks.retry import DB_PATIENCE_S
from golem_tasks.store import runs

logger = logging.getLogger(__name__)

#: A lock connection that does not answer a ping this fast is treated as dropped (the
#: server may be freeing the lock of an unreachable client: the embedded one does 6 s
#: after its last word from it).
PING_TIMEOUT_S = 3.0


def _forget(task: asyncio.Future[Any]) -> None:
    """An abandoned ping ends as it may: its connection is gone already."""
    if not task.cancelled():
        task.exception()


class SupervisorLost(UserError):
    """This supervisor lost its hold on the run; it must stop without touching it."""

    exit_code = 4


class RunLock:
    def __init__(
        self,
        dsn: str,
        run_id: str,
        *,
        patience_s: float = DB_PATIENCE_S,
        holder: str | None = None,
    ) -> None:
        self.dsn = dsn
        self.run_id = run_id
        self.patience_s = patience_s
        #: The supervisor's name in ``tasks.supervisor_term``: taking the lock back, it must
        #: still be the run's last holder.
        self.holder = holder
        self._conn: Connection | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None and not self._conn.closed

    async def acquire(self) -> None:
        """Take the lock or say who has it (a :class:`UserError`)."""
        if not await self.try_take():
            raise UserError(
                f"run {self.run_id} is already supervised by another process "
                f"(database {describe_dsn(self.dsn)})"
            )

    async def check(self) -> bool:
        """True when the lock is still held; False when its connection dropped (then call
        :meth:`regain` before acting on the run again)."""
        if self._conn is None:
            return False
        # Not wait_for: a cancelled query first tries to cancel itself on the server, which
        # on a dead link takes up to 10 s more; by then the server may have freed the lock
        # for a standby. The ping is left to unwind on its own; its connection is closed.
        ping = asyncio.ensure_future(runs.ping(self._conn))
        try:
            await asyncio.wait([ping], timeout=PING_TIMEOUT_S)
        except asyncio.CancelledError:
            ping.cancel()
            raise
        if ping.done() and ping.exception() is None:
            return True
        if ping.done():
            reason = str(ping.exception())
        else:
            reason = f"no answer in {PING_TIMEOUT_S:g}s"
            ping.cancel()
            ping.add_done_callback(_forget)
        logger.warning("run %s: the lock's database connection dropped: %s", self.run_id, reason)
        await self._drop()
        return False

    async def regain(self) -> None:
        """Reconnect with back-off and take the lock again; :class:`SupervisorLost` when
        another supervisor holds it, or the database stays away past the patience."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.patience_s
        delay, last = 0.5, ""
        while True:
            try:
                taken = await self.try_take()
                if taken:
                    await self._still_the_holder()
            except SupervisorLost:
                raise
            except (UserError, psycopg.Error) as exc:  # cannot connect (yet)
                await self._drop()
                last = str(exc)
            else:
                if taken:
                    logger.warning("run %s: the run's lock is held again", self.run_id)
                    return
                raise SupervisorLost(
                    f"run {self.run_id}: another supervisor took the run while the database "
                    "was away; this one stops without touching it"
                )
            if loop.time() + delay > deadline:
                raise SupervisorLost(
                    f"run {self.run_id}: the database was unreachable for "
                    f"{self.patience_s:g}s ({last}); resume with the same --run-id"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _still_the_holder(self) -> None:
        """The lock is free again once another supervisor that took it meanwhile has let
        it go (it finished the run, or stopped): then the run is not ours any more."""
        if self.holder is None or self._conn is None:
            return
        holder = await runs.holder(self._conn, self.run_id)
        if holder is not None and holder != self.holder:
            await self._drop()
            raise SupervisorLost(
                f"run {self.run_id}: another supervisor took the run ({holder}) "
                "while this one was cut off from the database; this one stops without "
                "touching it"
            )

    async def release(self) -> None:
        await self._drop()

    async def try_take(self) -> bool:
        """Take the lock now if it is free; False (and nothing held) when it is not."""
        conn = await connect(self.dsn, autocommit=True)
        try:
            locked = await runs.try_lock(conn, self.run_id)
        except BaseException:
            await conn.close()
            raise
        if not locked:
            await conn.close()
            return False
        self._conn = conn
        return True

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            try:
                await conn.close()
            except Exception as exc:
                logger.debug("closing the lock connection: %s", exc)
