from __future__ import annotations

from decimal import Decimal

import pytest

from golem_tasks.config import (
    YagnaSettings,
    choose_dsn,
    describe_dsn,
    mask_dsn,
    parse_budget,
)
from golem_tasks.errors import UserError


@pytest.mark.parametrize(
    ("text", "amount"),
    [("1/h", "1"), ("0.5/h", "0.5"), (" 2.25 / h ", "2.25"), (".1/h", "0.1")],
)
def test_budget_accepts_amount_per_hour(text: str, amount: str) -> None:
    assert parse_budget(text).amount == Decimal(amount)


@pytest.mark.parametrize("text", ["1", "1/d", "-1/h", "0/h", "abc/h", "1/hour", "", "1.2.3/h"])
def test_budget_rejects_other_formats(text: str) -> None:
    with pytest.raises(UserError, match="budget"):
        parse_budget(text)


def test_dsn_rule_order(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GOLEM_TASKS_DSN", "PGHOST", "PGDATABASE", "PGUSER", "PGPORT", "PGSERVICE"):
        monkeypatch.delenv(name, raising=False)
    assert choose_dsn(None) is None
    monkeypatch.setenv("PGDATABASE", "fromlibpq")
    assert getattr(choose_dsn(None), "source", None) == "libpq environment"
    monkeypatch.setenv("GOLEM_TASKS_DSN", "dbname=fromenv")
    assert getattr(choose_dsn(None), "dsn", None) == "dbname=fromenv"
    assert getattr(choose_dsn("dbname=fromoption"), "source", None) == "option"


@pytest.mark.parametrize(
    ("dsn", "secret"),
    [
        ("postgresql://u:pw1@h/db", "pw1"),
        ("host=h password=pw2 dbname=d", "pw2"),
        ("host=h password='p w3' dbname=d", "p w3"),
        ("postgres://u:pw4@h:bad/db", "pw4"),
    ],
)
def test_mask_dsn_hides_password(dsn: str, secret: str) -> None:
    assert secret not in mask_dsn(dsn)
    assert "***" in mask_dsn(dsn)


def test_describe_dsn() -> None:
    assert describe_dsn("postgresql://u:pw@db.example:5433/runs") == "db.example:5433/runs"
    assert describe_dsn("host=/tmp/x dbname=golem_tasks") == "/tmp/x/golem_tasks"


def test_yagna_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YAGNA_PAYMENT_NETWORK", "polygon")
    monkeypatch.delenv("YAGNA_PAYMENT_DRIVER", raising=False)
    monkeypatch.setenv("YAGNA_SUBNET", "devnet-beta")
    settings = YagnaSettings.from_env()
    assert settings.payment_platform == "erc20-polygon-glm"
    assert settings.subnet == "devnet-beta"
    assert YagnaSettings.from_env(payment_network="holesky").payment_platform == (
        "erc20-holesky-tglm"
    )
