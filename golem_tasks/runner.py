"""The Python API: ``await Runner(app, workers=3).main()`` does what ``golem-tasks run`` does.

A supervisor and a worker share this process and the run's own queue, so apps whose
``get_tasks`` yields callables work too. Like the CLI, this module sits at the top of the
stack: it composes the supervisor and the workers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from decimal import Decimal
from typing import Any

from golem_tasks import queue
from golem_tasks.appmodule import App, CallableTasks, load_app
from golem_tasks.config import Budget, parse_budget
from golem_tasks.db.connect import connection, require_schema
from golem_tasks.dsn import resolve_dsn
from golem_tasks.supervisor import RunOptions, RunOutcome, Supervisor

logger = logging.getLogger(__name__)


class Runner:
    """``Runner(app, workers=3, budget="0.5/h", max_price=0.01, ...)``: the keyword
    arguments are :class:`RunOptions` fields; ``budget`` and ``max_price`` may be text."""

    def __init__(
        self,
        app: str,
        *,
        dsn: str | None = None,
        budget: str | Budget = "1/h",
        max_price: Decimal | float | str | None = None,
        devnet_providers: int | None = None,
        **options: Any,
    ) -> None:
        self.options = RunOptions(
            app=app,
            budget=budget if isinstance(budget, Budget) else parse_budget(budget),
            max_price=None if max_price is None else Decimal(str(max_price)),
            **{**options, "local_only": True},
        )
        self.dsn_option = dsn
        self.devnet_providers = devnet_providers
        self.supervisor: Supervisor | None = None
        #: The app, when the caller (the CLI) loaded it and checked the schema already.
        self.checked_app: App | None = None
        self._stop_requested = False

    @classmethod
    def from_options(
        cls,
        options: RunOptions,
        *,
        dsn: str | None = None,
        devnet_providers: int | None = None,
        checked_app: App | None = None,
    ) -> Runner:
        """A runner for options already built (as the CLI builds them); ``checked_app``: the
        app the caller loaded, having checked the schema too (not done again)."""
        fields = {f.name: getattr(options, f.name) for f in dataclasses.fields(options)}
        runner = cls(dsn=dsn, devnet_providers=devnet_providers, **fields)
        runner.checked_app = checked_app
        return runner

    def stop(self) -> None:
        """Stop cleanly, as Ctrl+C does."""
        self._stop_requested = True
        if self.supervisor is not None:
            self.supervisor.request_stop()

    async def main(self) -> RunOutcome:
        """Check the app and the schema (once: the supervisor is handed both), then run."""
        app = self.checked_app or load_app(self.options.app, require_execute_task=False)
        dsn = (await asyncio.to_thread(resolve_dsn, self.dsn_option)).dsn
        if self.checked_app is None:
            async with connection(dsn) as conn:
                await require_schema(conn, dsn)
        if self.devnet_providers:
            from golem_tasks.devnet import Devnet

            async with Devnet(providers=self.devnet_providers, port=0) as net:
                os.environ.update(net.env())
                logger.info("devnet: %d providers at %s", self.devnet_providers, net.api_url)
                return await self._run(dsn, app)
        return await self._run(dsn, app)

    async def _run(self, dsn: str, app: App) -> RunOutcome:
        from workers.app import create_app, make_worker
        from workers.context import WorkerContext

        callables = CallableTasks()
        supervisor = Supervisor(
            self.options, dsn, callables=callables, app=app, schema_checked=True
        )
        self.supervisor = supervisor
        if self._stop_requested:
            supervisor.request_stop()
        workers = self.options.workers
        ctx = WorkerContext(dsn, callables=callables, pool_size=workers + 4)
        queue_app = create_app(dsn)
        # The worker's set-up (pool, GolemNode, queue) overlaps the supervisor's start.
        main = asyncio.create_task(supervisor.main(), name="supervisor")
        try:
            async with ctx, queue_app.open_async():
                worker = make_worker(
                    queue_app,
                    ctx,
                    queues=[queue.local_queue(supervisor.run_id)],
                    concurrency=workers * 2 + 2,
                    install_signal_handlers=False,
                )
                worker_task: asyncio.Task[None] | None = None
                try:
                    # The worker starts once the supervisor has re-registered the callable
                    # tasks stored before a restart, so that no job claims one it cannot run.
                    started = asyncio.create_task(supervisor.started.wait())
                    await asyncio.wait([main, started], return_when=asyncio.FIRST_COMPLETED)
                    started.cancel()
                    if not main.done():
                        worker_task = asyncio.create_task(worker.run(), name="worker")
                    return await main
                finally:
                    main.cancel()
                    worker.stop()
                    if worker_task is not None:
                        await asyncio.gather(worker_task, return_exceptions=True)
        finally:
            # The worker could not start (database gone?): the supervisor stops too.
            main.cancel()
            await asyncio.gather(main, return_exceptions=True)
