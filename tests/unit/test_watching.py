"""The pure parts of watching runs: short events, amounts, addresses, the page's data."""

from __future__ import annotations

import io
import json
import logging
from decimal import Decimal

import click
import pytest
from rich.console import Console

from golem_tasks.cli.monitor import parse_listen
from golem_tasks.monitor import live, views
from golem_tasks.monitor.dashboard import page


def test_events_get_short_ids_and_amounts() -> None:
    agreement = "cc323ede1864b216b888f4b773b00e1322f9d4cde730b4cacc2e84ec3e1b694f"
    demand = "86b456066f104a8c814ce9fadfde9a5d-0c36408f5f76d19137f8c5512786efbaac9da4210"
    assert live.shorten(f"agreement {agreement} with devnet-3 (score 0.076100000000000007600)") == (
        "agreement cc323ede with devnet-3 (score 0.0761)"
    )
    assert live.shorten(f"demand {demand} published") == "demand 86b45606-0c36408f published"
    assert live.shorten("allocation 0879940a-7782-4a33-8810-638f6884b5e8: 1") == (
        "allocation 0879940a: 1"
    )
    assert live.shorten("from 0x52d0992401dac4cb65b7554a62db6df15d7332c8") == "from 0x52d09924"
    # Run ids, task numbers and long decimal integers stay whole.
    assert live.shorten("run bc9d387ef3c0 task 12345678901234567890") == (
        "run bc9d387ef3c0 task 12345678901234567890"
    )


def test_result_lines_are_limited_per_second(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    handler = live.ConciseHandler(Console(file=out, width=100), verbose=False)
    clock = iter([0.0] * 8 + [1.5] * 3)
    monkeypatch.setattr(live.time, "monotonic", lambda: next(clock))
    logger = logging.getLogger("golem_tasks.results")
    for n in range(11):
        handler.handle(
            logger.makeRecord(logger.name, logging.INFO, "", 0, "task %d: ok", (n,), None)
        )
    shown = out.getvalue().splitlines()
    assert shown == [f"task {n}: ok" for n in (0, 1, 2, 3, 4, 8, 9, 10)]
    assert handler.hidden_results == 3


def test_amounts_are_exact_decimal_strings() -> None:
    assert views.amount(Decimal("0.001032483560222222000")) == "0.001032483560222222"
    assert views.amount(Decimal("100")) == "100"
    assert views.amount(Decimal("1E+2")) == "100"
    assert views.amount(Decimal("0E-18")) == "0"
    assert views.amount(None) is None


def test_listen_addresses() -> None:
    assert parse_listen("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_listen("[::1]:0") == ("::1", 0)
    for bad in ("8080", "localhost", "host:port", ":80", "127.0.0.1:70000"):
        with pytest.raises(click.BadParameter):
            parse_listen(bad)


def test_a_report_page_carries_its_data_safely() -> None:
    data = {"run": {"message": "</script><script>alert(1)</script>"}}
    html = page(frozen=data)
    assert "</script><script>alert" not in html
    start = html.index('type="application/json">') + len('type="application/json">')
    config = json.loads(html[start : html.index("</script>", start)])
    assert config["frozen"] == data
    assert "http://" not in html.replace('"http://www.w3.org/2000/svg"', "")
    assert "https://" not in html
