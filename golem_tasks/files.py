"""Batches with file transfers, for app code: golem-core's SendFile/DownloadFile, finished.

Two things about golem-core's transfer commands that an app otherwise learns the hard way:
``batch.wait()`` returns before a ``DownloadFile`` has finished writing (its ``after`` step
runs in a task of its own), and every ``SendFile``/``DownloadFile`` starts a ``gftp server``
process that golem-core never stops (it goes only when garbage collection finds it: in a
long run, hundreds of idle processes). ``run_batch`` waits for both and stops them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from golem.resources import Activity, Command, PoolingBatch

logger = logging.getLogger(__name__)


async def run_batch(activity: Activity, *commands: Command, timeout: float) -> PoolingBatch:
    """Run ``commands`` as one batch; return it once it succeeded and its downloads landed.

    Raises golem-core's ``BatchError``/``BatchTimeoutError`` as ``batch.wait`` does. The gftp
    servers of the transfer commands are stopped in every case.
    """
    try:
        batch = await activity.execute_commands(*commands)
        await batch.wait(timeout=timeout)
        if batch.execute_after_task is not None:
            await asyncio.wait_for(asyncio.shield(batch.execute_after_task), timeout)
        return batch
    finally:
        await asyncio.shield(close_transfers(*commands))


async def close_transfers(*commands: Command) -> None:
    """Stop the gftp servers that golem-core's transfer commands started."""
    for command in commands:
        provider: Any = getattr(command, "_gftp", None)
        if provider is None:
            continue
        try:
            await provider.__aexit__(None, None, None)
        except Exception as exc:  # its server may already be gone: nothing left to stop
            logger.debug("stopping the gftp server of %s: %s", type(command).__name__, exc)
        tmp_dir: Any = getattr(command, "_tmp_dir", None)
        if tmp_dir is not None:
            with contextlib.suppress(Exception):
                tmp_dir.cleanup()
