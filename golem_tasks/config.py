"""Configuration read from options and the environment: the DSN rule, yagna settings, budget.

One rule decides which PostgreSQL every command talks to:
``--dsn``, else ``GOLEM_TASKS_DSN``, else libpq's own ``PG*`` environment (when any is
set), else the embedded PostgreSQL under ``GOLEM_TASKS_HOME`` (default ``~/.golem-tasks``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

import psycopg.conninfo

from golem_tasks.errors import UserError

#: libpq variables that, when any is set, mean "the user configured PostgreSQL via libpq".
LIBPQ_ENV = (
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGDATABASE",
    "PGUSER",
    "PGPASSWORD",
    "PGSERVICE",
    "PGSERVICEFILE",
)

DEFAULT_PAYMENT_NETWORK = "holesky"
DEFAULT_PAYMENT_DRIVER = "erc20"
DEFAULT_SUBNET = "public"


def home_dir() -> Path:
    """Where golem-tasks keeps local state (the embedded database), per user."""
    return Path(os.environ.get("GOLEM_TASKS_HOME") or Path.home() / ".golem-tasks").expanduser()


@dataclass(frozen=True)
class DsnChoice:
    """The DSN to use and which rule produced it (shown by ``db status`` and errors)."""

    dsn: str
    source: str  # "option", "GOLEM_TASKS_DSN", "libpq environment" or "embedded"

    @property
    def embedded(self) -> bool:
        return self.source == "embedded"


def choose_dsn(option: str | None) -> DsnChoice | None:
    """Apply the DSN rule; ``None`` means the embedded PostgreSQL must be used.

    The caller starts the embedded server only then, so that a configured DSN never
    starts a local database as a side effect.
    """
    if option:
        return DsnChoice(validate_dsn(option), "option")
    env = os.environ.get("GOLEM_TASKS_DSN")
    if env:
        return DsnChoice(validate_dsn(env), "GOLEM_TASKS_DSN")
    if any(os.environ.get(name) for name in LIBPQ_ENV):
        return DsnChoice("", "libpq environment")
    return None


#: libpq settings that let a connection notice within seconds that the host at its other
#: end vanished (link down, power off) instead of waiting out the kernel's default of hours.
#: Added to every DSN that does not set them; unix-socket connections ignore them. A busy
#: connection gives up after 5 s unacknowledged, an idle one after 3 + 3 x 1 = 6 s: as
#: soon as the embedded server drops the other end (a supervisor's run lock is watched
#: more closely still: see ``supervisor.runlock``).
TCP_LIVENESS = {
    "keepalives": "1",
    "keepalives_idle": "3",
    "keepalives_interval": "1",
    "keepalives_count": "3",
    "tcp_user_timeout": "5000",
}


def with_tcp_liveness(dsn: str) -> str:
    """``dsn`` with :data:`TCP_LIVENESS` for every setting it does not give itself."""
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    missing = {key: value for key, value in TCP_LIVENESS.items() if key not in params}
    if not missing:
        return dsn
    return psycopg.conninfo.make_conninfo(dsn, **missing)


def validate_dsn(dsn: str) -> str:
    """Refuse a DSN libpq cannot parse, with the reason and the password masked."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "cannot parse"
        raise UserError(f"malformed DSN {mask_dsn(dsn)!r}: {mask_password(reason, dsn)}") from None
    # libpq parses these lazily, at connect time; refuse them before anything is touched.
    for option in ("port", "connect_timeout"):
        value = params.get(option)
        if value is not None and not all(part.isdigit() for part in str(value).split(",")):
            raise UserError(f"malformed DSN {mask_dsn(dsn)!r}: {option} must be a number")
    return dsn


_URI_PASSWORD = re.compile(r"^(?P<head>[a-z]+://[^:/@]*:)(?P<pw>[^@]*)(?P<tail>@)", re.IGNORECASE)
_KW_PASSWORD = re.compile(
    r"(?P<head>\bpassword\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE
)


def mask_dsn(dsn: str) -> str:
    """The DSN with any password replaced by ``***`` (works on malformed DSNs too)."""
    masked = _URI_PASSWORD.sub(lambda m: f"{m['head']}***{m['tail']}" if m["pw"] else m[0], dsn)
    return _KW_PASSWORD.sub(lambda m: f"{m['head']}***", masked)


def mask_password(text: str, dsn: str) -> str:
    """Remove a DSN's password from a message (libpq sometimes echoes it back)."""
    try:
        password = psycopg.conninfo.conninfo_to_dict(dsn).get("password")
    except psycopg.ProgrammingError:
        match = _URI_PASSWORD.match(dsn) or _KW_PASSWORD.search(dsn)
        password = match["pw"] if match else None
    if password:
        text = text.replace(str(password), "***")
    return text


def describe_dsn(dsn: str) -> str:
    """``host/db`` as a user would name the database, for one-line messages."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return mask_dsn(dsn)
    host = str(params.get("host") or os.environ.get("PGHOST") or "localhost")
    port = params.get("port") or os.environ.get("PGPORT")
    db = str(params.get("dbname") or os.environ.get("PGDATABASE") or params.get("user") or "")
    where = f"{host}:{port}" if port else host
    return f"{where}/{db}"


@dataclass(frozen=True)
class Budget:
    """An hourly budget: at most ``amount`` accepted within any hour of the run."""

    amount: Decimal

    def __str__(self) -> str:
        return f"{self.amount}/h"


_BUDGET = re.compile(r"^\s*(?P<amount>\d+(?:\.\d+)?|\.\d+)\s*/\s*h\s*$")


def parse_budget(text: str) -> Budget:
    """Parse ``X/h`` (``1/h``, ``0.5/h``); anything else is a user error."""
    match = _BUDGET.match(text)
    if not match:
        raise UserError(
            f"invalid budget {text!r}: expected an amount per hour such as '1/h' or '0.25/h'"
        )
    try:
        amount = Decimal(match["amount"])
    except InvalidOperation:  # pragma: no cover - the regex admits only decimals
        raise UserError(f"invalid budget {text!r}") from None
    if amount <= 0:
        raise UserError(f"invalid budget {text!r}: the amount per hour must be above 0")
    return Budget(amount)


@dataclass(frozen=True)
class YagnaSettings:
    """Where the yagna REST API is and how payments are made, from options or environment."""

    api_url: str
    app_key: str
    payment_network: str
    payment_driver: str
    subnet: str

    @property
    def payment_platform(self) -> str:
        token = "glm" if self.payment_network in {"mainnet", "polygon"} else "tglm"
        return f"{self.payment_driver}-{self.payment_network}-{token}"

    @classmethod
    def from_env(
        cls,
        *,
        subnet: str | None = None,
        payment_network: str | None = None,
        payment_driver: str | None = None,
    ) -> YagnaSettings:
        return cls(
            api_url=os.environ.get("YAGNA_API_URL") or "http://127.0.0.1:7465",
            app_key=os.environ.get("YAGNA_APPKEY") or "",
            payment_network=payment_network
            or os.environ.get("YAGNA_PAYMENT_NETWORK")
            or DEFAULT_PAYMENT_NETWORK,
            payment_driver=payment_driver
            or os.environ.get("YAGNA_PAYMENT_DRIVER")
            or DEFAULT_PAYMENT_DRIVER,
            subnet=subnet or os.environ.get("YAGNA_SUBNET") or DEFAULT_SUBNET,
        )
