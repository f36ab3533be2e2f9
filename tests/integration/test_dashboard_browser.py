"""The dashboard in a real browser: Debian's Chromium, headless, driven by Playwright.

It loads without console errors, draws its charts, shows the database's numbers and
follows a run while it progresses. With GOLEM_TASKS_SCREENSHOT=path (``make screenshot``)
it also saves the README's screenshot there.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.helpers import ROOT
from tests.integration.pipeline_support import APP, Cli, devnet, env_for
from tests.integration.watch_support import chromium_path, expected, serve_dashboard
from tests.support.audit import audit_run

pytestmark = pytest.mark.timeout(240)


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_path(),
            headless=True,
            # CI runs as root, where Chromium's sandbox cannot start.
            args=["--no-sandbox", "--disable-dev-shm-usage"],
        )
        try:
            yield browser
        finally:
            await browser.close()


async def field(page: Page, name: str) -> str:
    return await page.locator(f'[data-field="{name}"]').first.inner_text()


async def field_value(page: Page, name: str) -> str:
    return await page.locator(f'[data-field="{name}"]').first.get_attribute("data-value") or ""


def shown_glm(amount: Decimal) -> str:
    """How the page writes an amount: at most 6 decimals."""
    if amount == 0:
        return "0"
    text = format(amount.quantize(Decimal("0.000001"), rounding=ROUND_HALF_EVEN), "f")
    return text.rstrip("0").rstrip(".")


async def check_page(page: Page, db: dict[str, Any]) -> None:
    tasks = db["tasks"]
    for name, want in (
        ("tasks.done", tasks["done"]),
        ("tasks.failed", tasks["failed"]),
        ("tasks.pending", tasks["pending"]),
        ("tasks.running", tasks["claimed"]),
        ("tasks.total", db["total"]),
        ("activities.ready", db["activities"]["ready"]),
        ("batches", db["batches"]),
        ("errors", db["errors"]),
        ("market.agreements", db["agreements"]),
    ):
        assert await field(page, name) == str(want), name
    assert await field(page, "run.status") == db["run"]["status"]
    assert Decimal(await field_value(page, "money.spent")) == db["spent"]
    assert await field(page, "money.spent") == shown_glm(db["spent"])
    per_result = db["spent"] / tasks["done"]
    assert Decimal(await field_value(page, "money.per_result")) == per_result
    rows = page.locator("#providers tbody tr")
    assert await rows.count() == len(db["providers"])
    for provider_id, want in db["providers"].items():
        row = page.locator(f'#providers tr[data-provider="{provider_id}"]')
        assert await row.locator('[data-col="done"]').inner_text() == str(want["done"])
        glm = row.locator('[data-col="glm"]')
        assert Decimal(await glm.get_attribute("data-value") or "") == want["glm"]
        assert await glm.inner_text() == shown_glm(want["glm"])


async def test_dashboard_follows_a_run_in_chromium(installed_dsn: str, tmp_path: Path) -> None:
    run_id = "browser"
    problems: list[str] = []
    async with (
        devnet(providers=4, seed=31) as net,
        serve_dashboard(installed_dsn, poll_s=0.5) as url,
        chromium() as browser,
    ):
        env = env_for(net, installed_dsn, MULTIPLY_TASKS="30", MULTIPLY_SLEEP="0.5")
        cli = await Cli.start(
            "run",
            APP,
            "--workers",
            "3",
            "--debit-note-interval",
            "1",
            "--run-id",
            run_id,
            env=env,
            log=tmp_path / "run.log",
        )
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            await page.goto(f"{url}#run={run_id}")
            # The page follows the run without a reload: it shows several counts on the
            # way, not just the first and the last.
            seen: set[int] = set()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 120
            while cli.proc.returncode is None and loop.time() < deadline:
                text = await field(page, "tasks.done")
                if text.isdigit() and 0 < int(text) < 30:
                    seen.add(int(text))
                await asyncio.sleep(0.2)
            assert len(seen) >= 3, f"the page showed only {sorted(seen)} during the run"
            assert await cli.wait() == 0, cli.output()
            await audit_run(net, installed_dsn, run_id)
            await page.wait_for_function(
                "document.querySelector('[data-field=\"run.status\"]').textContent === 'finished'",
                timeout=30_000,
            )
            # One more update after the end, then the page and the database agree.
            updates = int(await page.locator("body").get_attribute("data-updates") or 0)
            await page.wait_for_function(
                f"Number(document.body.dataset.updates) > {updates}", timeout=10_000
            )
            db = await expected(installed_dsn, run_id)
            assert db["tasks"]["done"] == 30
            await check_page(page, db)
            # Charts drawn: one line through every point of the history.
            for chart in ("results", "working", "glm"):
                line = page.locator(f"#chart-{chart} path.line")
                assert await line.count() == 1, chart
                assert await line.get_attribute("data-points") == "61"
                assert (await line.get_attribute("d") or "").count("L") == 60
            box = await page.locator("#chart-results").bounding_box()
            assert box is not None and box["width"] > 200 and box["height"] > 100
            run_row = page.locator(f'#runs tr[data-run="{run_id}"]')
            assert await run_row.get_attribute("class") == "selected"
            assert "30/30" in await run_row.inner_text()
            shot = tmp_path / "dashboard.png"
            await page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            target = os.environ.get("GOLEM_TASKS_SCREENSHOT")
            if target:
                shutil.copyfile(shot, ROOT / target)
        finally:
            await cli.stop()
    assert problems == []
