"""The supervisor's end-of-run check against the feeder storing its last tasks."""

from __future__ import annotations

import asyncio

from golem_tasks.db.connect import connect, connection
from golem_tasks.store import runs
from golem_tasks.store import tasks as taskstore
from golem_tasks.store.tasks import NewTask
from tests.helpers import make_run


async def test_a_fully_fed_run_is_never_paired_with_a_count_from_before_its_last_tasks(
    installed_dsn: str,
) -> None:
    """Seen in a loaded `make test`: a tick counted 0 open tasks, the feeder then stored 50
    and marked the feed done, the tick read the run as fully fed and ended it, all 50
    pending. Here the interleaving is forced: the reader is held inside runs.progress by a
    lock on the run table while the feeder's tasks and its "feed done" are stored."""
    await make_run(installed_dsn)
    feeder = await connect(installed_dsn)
    reader = await connect(installed_dsn, autocommit=True)
    async with feeder, reader:
        await feeder.execute("LOCK TABLE tasks.run IN ACCESS EXCLUSIVE MODE")
        reading = asyncio.create_task(runs.progress(reader, "r1"))
        async with connection(installed_dsn, autocommit=True) as watcher:
            for _ in range(500):  # until the reader waits for the lock
                cur = await watcher.execute(
                    "SELECT count(*) AS n FROM pg_stat_activity "
                    "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
                if (await cur.fetchone() or {}).get("n"):
                    break
                await asyncio.sleep(0.01)
            else:
                raise AssertionError("the reader never waited for the run table")
        tasks = [NewTask(str(n), n, {"n": n}) for n in range(50)]
        await taskstore.feed(feeder, "r1", tasks, max_attempts=3, timeout_s=None)
        await runs.set_feed_done(feeder, "r1", True)
        await feeder.commit()
        run, open_tasks = await asyncio.wait_for(reading, 10)
    assert run.feed_done is True
    assert open_tasks == 50
