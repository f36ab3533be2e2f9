"""The Python API: ``await Runner(app, workers=3).main()`` does what ``golem-tasks run`` does.

A supervisor and a worker share this process and the run's own queue, so apps whose
``get_tasks`` yields callables work too. Extra `golem-tasks worker` processes are not
needed (and do not take this run's jobs).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from decimal import Decimal
from typing import Any

from golem_tasks import queue
from golem_tasks.appmodule import CallableTasks, load_app
from golem_tasks.config import Budget, parse_budget
from golem_tasks.db.connect import connection, require_schema
from golem_tasks.dsn import resolve_dsn
from golem_tasks.pricing import PriceLimits
from golem_tasks.supervisor import RunOptions, RunOutcome, Supervisor

logger = logging.getLogger(__name__)


class Runner:
    def __init__(
        self,
        app: str,
        *,
        workers: int = 1,
        run_id: str | None = None,
        dsn: str | None = None,
        budget: str | Budget = "1/h",
        max_price: Decimal | float | str | None = None,
        price_limits: PriceLimits | None = None,
        warmup_s: float = 300.0,
        subnet: str | None = None,
        payment_network: str | None = None,
        payment_driver: str | None = None,
        feed_window: int | None = None,
        debit_note_interval_s: int = 120,
        devnet_providers: int | None = None,
        **supervisor_kwargs: Any,
    ) -> None:
        options = RunOptions(
            app=app,
            workers=workers,
            run_id=run_id,
            budget=budget if isinstance(budget, Budget) else parse_budget(budget),
            max_price=None if max_price is None else Decimal(str(max_price)),
            price_limits=price_limits or PriceLimits(),
            subnet=subnet,
            payment_network=payment_network,
            payment_driver=payment_driver,
            warmup_s=warmup_s,
            feed_window=feed_window,
            debit_note_interval_s=debit_note_interval_s,
            local_only=True,
        )
        self._setup(options, dsn, devnet_providers, supervisor_kwargs)

    @classmethod
    def from_options(
        cls, options: RunOptions, *, dsn: str | None = None, devnet_providers: int | None = None
    ) -> Runner:
        """A runner for options already built (as the CLI builds them)."""
        runner = cls.__new__(cls)
        runner._setup(dataclasses.replace(options, local_only=True), dsn, devnet_providers, {})
        return runner

    def _setup(
        self,
        options: RunOptions,
        dsn: str | None,
        devnet_providers: int | None,
        supervisor_kwargs: dict[str, Any],
    ) -> None:
        self.options = options
        self.dsn_option = dsn
        self.devnet_providers = devnet_providers
        self.supervisor_kwargs = supervisor_kwargs
        self.supervisor: Supervisor | None = None
        self._stop_requested = False

    def stop(self) -> None:
        """Stop cleanly, as Ctrl+C does."""
        self._stop_requested = True
        if self.supervisor is not None:
            self.supervisor.request_stop()

    async def main(self) -> RunOutcome:
        load_app(self.options.app, require_execute_task=False)
        dsn = (await asyncio.to_thread(resolve_dsn, self.dsn_option)).dsn
        async with connection(dsn) as conn:
            await require_schema(conn, dsn)
        if self.devnet_providers:
            from golem_tasks.devnet import Devnet

            async with Devnet(providers=self.devnet_providers, port=0) as net:
                os.environ.update(net.env())
                logger.info("devnet: %d providers at %s", self.devnet_providers, net.api_url)
                return await self._run(dsn)
        return await self._run(dsn)

    async def _run(self, dsn: str) -> RunOutcome:
        from workers.app import create_app, make_worker
        from workers.context import WorkerContext

        callables = CallableTasks()
        supervisor = Supervisor(self.options, dsn, callables=callables, **self.supervisor_kwargs)
        self.supervisor = supervisor
        if self._stop_requested:
            supervisor.request_stop()
        workers = self.options.workers
        ctx = WorkerContext(dsn, callables=callables, pool_size=workers + 4)
        app = create_app(dsn)
        async with ctx, app.open_async():
            worker = make_worker(
                app,
                ctx,
                queues=[queue.local_queue(supervisor.run_id)],
                concurrency=workers * 2 + 2,
                install_signal_handlers=False,
            )
            worker_task = asyncio.create_task(worker.run(), name="worker")
            try:
                return await supervisor.main()
            finally:
                worker.stop()
                await asyncio.gather(worker_task, return_exceptions=True)
