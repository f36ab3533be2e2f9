"""Jobs that keep breaking without any task ending (whatever the cause) end the run,
bounded, instead of hiring agreement after agreement for ever. In `make chaos`: it takes
the supervisor's full patience with each agreement (about a minute and a half)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tests.integration.pipeline_support import APP, Cli, devnet, env_for, rows
from tests.support.audit import audit_run

REFUSE_CLAIMS = """
CREATE FUNCTION tasks.refuse_claims() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'claimed' THEN RAISE EXCEPTION 'claims refused by a test trigger'; END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_claims BEFORE UPDATE ON tasks.task
    FOR EACH ROW EXECUTE FUNCTION tasks.refuse_claims();
"""


@pytest.mark.chaos
@pytest.mark.timeout(400)
async def test_jobs_that_keep_breaking_without_progress_end_the_run(
    installed_dsn: str, tmp_path: Path
) -> None:
    """Whatever breaks every job (here: the database refuses every claim), the run ends
    instead of hiring agreement after agreement for ever."""
    with psycopg.connect(installed_dsn, autocommit=True) as conn:
        conn.execute(REFUSE_CLAIMS)
    async with devnet(providers=6, seed=13) as net:
        env = env_for(net, installed_dsn, MULTIPLY_TASKS="3")
        cli = await Cli.start(
            "run", APP, "--workers", "1", "--run-id", "broken", env=env, log=tmp_path / "run.log"
        )
        assert await cli.wait(180) == 4, cli.output()
        await audit_run(net, installed_dsn, "broken")
    assert "3 agreements in a row ended with their jobs failing" in cli.output()
    run = await rows(installed_dsn, "SELECT status, stop_reason FROM tasks.run")
    assert run[0]["status"] == "failed"
    agreements = await rows(
        installed_dsn, "SELECT status FROM tasks.agreement WHERE run_id = 'broken'"
    )
    assert len(agreements) <= 4 and all(a["status"] != "approved" for a in agreements)
