"""``db start --listen`` addresses and the TCP liveness settings every client connection gets."""

from __future__ import annotations

import psycopg.conninfo
import pytest

from golem_tasks.config import TCP_LIVENESS, with_tcp_liveness
from golem_tasks.db.embedded import ListenAddress, parse_listen
from golem_tasks.errors import UserError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.1.2.3", ListenAddress("10.1.2.3", 5432)),
        ("10.1.2.3:6543", ListenAddress("10.1.2.3", 6543)),
        ("db.example.org:6543", ListenAddress("db.example.org", 6543)),
        ("[fd00::1]:6543", ListenAddress("fd00::1", 6543)),
        ("fd00::1", ListenAddress("fd00::1", 5432)),
    ],
)
def test_listen_addresses(text: str, expected: ListenAddress) -> None:
    assert parse_listen(text) == expected


def test_listen_address_prints_as_a_dsn_host() -> None:
    assert str(ListenAddress("fd00::1", 6543)) == "[fd00::1]:6543"
    assert str(ListenAddress("10.1.2.3", 5432)) == "10.1.2.3:5432"


@pytest.mark.parametrize(
    "text", ["*", "0.0.0.0", "::", "10.1.2.3:0", "10.1.2.3:99999", "10.1.2.3:x", "a b", "[::1"]
)
def test_bad_listen_addresses_are_refused(text: str) -> None:
    with pytest.raises(UserError, match="invalid --listen"):
        parse_listen(text)


def test_liveness_settings_are_added_unless_the_dsn_sets_them() -> None:
    params = psycopg.conninfo.conninfo_to_dict(
        with_tcp_liveness("postgresql://u:p@10.0.0.1:5433/db?keepalives_idle=9")
    )
    assert params["keepalives_idle"] == "9"
    assert params["tcp_user_timeout"] == TCP_LIVENESS["tcp_user_timeout"]
    assert params["host"] == "10.0.0.1" and params["password"] == "p"
