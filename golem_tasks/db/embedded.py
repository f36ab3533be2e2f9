"""The embedded PostgreSQL: zero setup, one server per host, shared by every process.

The binaries come from the ``pgserver`` wheel (relocatable PostgreSQL on PyPI); the
life cycle is ours so that we control the settings (enough connections for hundreds of
activities), start-up timeouts and sharing: a file lock makes the first process start the
server and every later one, on any terminal, connect to it. The server listens on a unix
socket only, unless ``db start --listen ADDR[:PORT]`` asks it to serve other hosts too: then
TCP connections need a password (scram-sha-256) kept in a file only the owner can read, and
dead peers are noticed within seconds through TCP keepalives.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import ipaddress
import logging
import os
import pwd
import re
import secrets
import shutil
import subprocess
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import psycopg
import psycopg.conninfo
import psycopg.sql

from golem_tasks.db.queries import queries
from golem_tasks.errors import UserError

logger = logging.getLogger(__name__)

DATABASE = "golem_tasks"
SUPERUSER = "postgres"
#: The system account that runs the server when golem-tasks runs as root (PostgreSQL
#: refuses to run as root).
SYSTEM_USER = "golemtasks-pg"
SOCKET_PORT = 5432
#: The file under ``$GOLEM_TASKS_HOME`` holding the password of TCP connections.
PASSWORD_FILE = "pg-password"

#: Settings written on first initialisation. Hundreds of activities each hold a connection
#: through the workers' pools, so the default of 100 connections is too few.
DEFAULT_SETTINGS: Mapping[str, str] = {
    "max_connections": "500",
    "shared_buffers": "128MB",
    "listen_addresses": "''",
    "log_min_messages": "warning",
    "log_line_prefix": "'%m [%p] '",
    "password_encryption": "'scram-sha-256'",
    # A host that vanishes mid-session (link down, power off) must not hold its locks and
    # connections for the kernel's default of two hours: probe idle connections after 3 s,
    # give up after 3 unanswered probes 1 s apart, and drop a connection whose sent data is
    # unacknowledged for 6 s. A running query checks its client every 2 s. A standby takes
    # a vanished supervisor's run after these ~6 s; the supervisor, cut off, stops acting
    # within 3.5 s (its lock watchdog), before (tests/unit/test_lock_timing.py).
    "tcp_keepalives_idle": "3",
    "tcp_keepalives_interval": "1",
    "tcp_keepalives_count": "3",
    "tcp_user_timeout": "6000",
    "client_connection_check_interval": "'2s'",
}

#: Who may connect how: the unix socket (reachable only by the data directory's owner)
#: trusts; every TCP connection, loopback included, must give the password.
HBA = """\
# Written by golem-tasks on every start of the embedded PostgreSQL.
local all all trust
host all all 0.0.0.0/0 scram-sha-256
host all all ::/0 scram-sha-256
"""
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


@dataclass(frozen=True)
class ListenAddress:
    """Where the embedded PostgreSQL also accepts TCP connections from other hosts."""

    host: str
    port: int = SOCKET_PORT

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_listen(text: str) -> ListenAddress:
    """``ADDR``, ``ADDR:PORT``, ``[IPV6]:PORT`` or ``IPV6``; one line saying what is wrong."""
    raw = text.strip()
    host, port_text = raw, ""
    if raw.startswith("["):
        host, sep, rest = raw[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise UserError(f"invalid --listen {text!r}: expected [IPV6]:PORT")
        port_text = rest[1:]
    elif raw.count(":") == 1:
        host, port_text = raw.split(":")
    port = SOCKET_PORT
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise UserError(f"invalid --listen {text!r}: the port must be a number 1-65535")
        port = int(port_text)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if not _HOSTNAME.match(host) or host.replace(".", "").isdigit():
            raise UserError(
                f"invalid --listen {text!r}: expected an IP address or host name, "
                "optionally with :PORT"
            ) from None
    else:
        if address.is_unspecified:
            raise UserError(
                f"invalid --listen {text!r}: name the address other hosts reach this one at "
                "(it goes into the DSN they use), not a wildcard"
            )
        host = str(address)
    return ListenAddress(host, port)


def _bin_dir() -> Path:
    """pgserver's bundled binaries, found without importing pgserver (whose import has
    side effects we do not need)."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            "the embedded PostgreSQL needs the 'pgserver' package: pip install pgserver"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _ensure_system_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(name)


def _open_to_others(path: Path, mode: int) -> None:
    """Add ``mode`` bits to ``path`` and every folder above it (traversal for the account)."""
    for folder in [path, *path.parents]:
        current = folder.stat().st_mode
        if current & mode != mode:
            folder.chmod(current | mode)


def _open_tree(root: Path, dir_mode: int, file_mode: int) -> None:
    for folder, _dirs, files in os.walk(root):
        _open_to_others(Path(folder), dir_mode)
        for name in files:
            file = Path(folder) / name
            current = file.stat().st_mode
            if current & file_mode != file_mode:
                file.chmod(current | file_mode)


@dataclass(frozen=True)
class EmbeddedStatus:
    running: bool
    pid: int | None
    data_dir: Path
    socket_dir: Path
    dsn: str
    #: Where it serves other hosts (``None``: unix socket only) and their DSN, password masked.
    listen: ListenAddress | None = None
    remote_dsn: str | None = None


class EmbeddedPostgres:
    """A PostgreSQL data directory under ``home`` and the server that serves it."""

    def __init__(self, home: Path, settings: Mapping[str, str] | None = None) -> None:
        self.home = home.expanduser().resolve()
        self.data_dir = self.home / "pgdata"
        self.log_file = self.home / "postgresql.log"
        self.settings = {**DEFAULT_SETTINGS, **(settings or {})}
        self.password_file = self.home / PASSWORD_FILE
        #: The port the server is started on (the running server's own port wins).
        self._port = SOCKET_PORT

    # -- public -----------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The running server's port (its socket is named after it), else the one to use."""
        running = self._pidfile_field(3)
        return int(running) if running and running.isdigit() else self._port

    @property
    def socket_dir(self) -> Path:
        """The data directory, unless its socket path would exceed the unix limit (~107)."""
        if len(str(self.data_dir / f".s.PGSQL.{self.port}")) < 100:
            return self.data_dir
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
        return Path("/tmp") / f"golem-tasks-{digest}"

    def dsn(self, dbname: str = DATABASE) -> str:
        return psycopg.conninfo.make_conninfo(
            host=str(self.socket_dir), port=str(self.port), user=SUPERUSER, dbname=dbname
        )

    def listening(self) -> ListenAddress | None:
        """Where the running server accepts TCP connections; ``None`` for the socket only."""
        if self._running_pid() is None:
            return None
        host = self._pidfile_field(5)
        return ListenAddress(host, self.port) if host else None

    def remote_dsn(self, *, masked: bool = False) -> str | None:
        """The DSN other hosts use while the server listens on TCP."""
        where = self.listening()
        if where is None:
            return None
        password = "***" if masked else urllib.parse.quote(self._password(), safe="")
        return f"postgresql://{SUPERUSER}:{password}@{where}/{DATABASE}"

    def status(self) -> EmbeddedStatus:
        pid = self._running_pid()
        return EmbeddedStatus(
            pid is not None,
            pid,
            self.data_dir,
            self.socket_dir,
            self.dsn(),
            self.listening(),
            self.remote_dsn(masked=True),
        )

    def start(self, timeout: float = 120.0, *, listen: ListenAddress | None = None) -> str:
        """Start the server unless it runs already; return its DSN. Safe to race.

        With ``listen`` it also serves other hosts there (a running server that does not
        is refused: restarting it would cut off every process using it).
        """
        with self._lock():
            if self._running_pid() is None:
                if listen is not None:
                    self._port = listen.port
                self._start_locked(timeout, listen)
            elif listen is not None and self.listening() != listen:
                now = self.listening()
                raise UserError(
                    "the embedded PostgreSQL already runs "
                    + (f"listening on {now}" if now else "on its unix socket only")
                    + f": stop it first (golem-tasks db stop) to listen on {listen}"
                )
            self._ensure_database()
            if listen is not None:
                self._set_password()
        return self.dsn()

    def stop(self, timeout: float = 60.0) -> bool:
        """Stop the server (fast shutdown); ``False`` when it was not running."""
        with self._lock():
            if self._running_pid() is None:
                return False
            self._pg_ctl(["stop", "-m", "fast", "-w", "-t", str(int(timeout))], timeout + 5)
            return True

    # -- internals --------------------------------------------------------------------

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / "embedded.lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _pidfile_lines(self) -> list[str]:
        try:
            return (self.data_dir / "postmaster.pid").read_text().splitlines()
        except (FileNotFoundError, PermissionError):
            return []

    def _pidfile_field(self, index: int) -> str:
        """A line of ``postmaster.pid`` (3: port, 5: first listen address), else ''."""
        lines = self._pidfile_lines()
        return lines[index].strip() if len(lines) > index else ""

    def _password(self) -> str:
        """The password of TCP connections, created once, readable by its owner only."""
        try:
            return self.password_file.read_text().strip()
        except FileNotFoundError:
            pass
        self.home.mkdir(parents=True, exist_ok=True)
        password = secrets.token_urlsafe(24)
        fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(password + "\n")
        return password

    def _set_password(self) -> None:
        """Give the superuser the password, sent as a scram verifier (never in clear)."""
        with psycopg.connect(self.dsn("postgres"), autocommit=True, connect_timeout=10) as conn:
            verifier = conn.pgconn.encrypt_password(
                self._password().encode(), SUPERUSER.encode(), b"scram-sha-256"
            )
            conn.execute(
                psycopg.sql.SQL(queries.set_role_password).format(
                    role=psycopg.sql.Identifier(SUPERUSER),
                    password=psycopg.sql.Literal(verifier.decode()),
                )
            )

    def _running_pid(self) -> int | None:
        """The postmaster's pid when it runs and reports itself ready."""
        lines = self._pidfile_lines()
        if not lines:
            return None
        try:
            pid = int(lines[0])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError):
            return None
        except PermissionError:
            pass  # alive, owned by the server's system account
        status = lines[7].strip() if len(lines) > 7 else ""
        return pid if status == "ready" else None

    def _as_user(self) -> str | None:
        return SYSTEM_USER if os.geteuid() == 0 else None

    def _run(self, args: list[str], timeout: float) -> None:
        logger.debug("running %s", args)
        result = subprocess.run(
            args,
            user=self._as_user(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd="/",
        )
        if result.returncode != 0:
            raise UserError(
                f"embedded PostgreSQL: {Path(args[0]).name} failed ({result.returncode}): "
                f"{(result.stderr or result.stdout).strip().splitlines()[-1:]!s} "
                f"— see {self.log_file}"
            )

    def _pg_ctl(self, args: list[str], timeout: float) -> None:
        self._run([str(_bin_dir() / "pg_ctl"), "-D", str(self.data_dir), *args], timeout)

    def _prepare_for_system_user(self) -> None:
        """As root, let the unprivileged server account reach the binaries and its files."""
        if self._as_user() is None:
            return
        entry = _ensure_system_user(SYSTEM_USER)
        install_dir = _bin_dir().parent
        traverse = 0o055  # r-x for group and others
        _open_to_others(install_dir, traverse)
        _open_tree(install_dir, traverse, 0o044)
        _open_tree(install_dir / "bin", traverse, 0o055)
        for path in (self.data_dir, self.socket_dir):
            path.mkdir(parents=True, exist_ok=True)
            _open_to_others(path.parent, 0o011)
            shutil.chown(path, entry.pw_uid, entry.pw_gid)
        self.log_file.touch()
        shutil.chown(self.log_file, entry.pw_uid, entry.pw_gid)

    def _start_locked(self, timeout: float, listen: ListenAddress | None) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self._prepare_for_system_user()
        if not (self.data_dir / "PG_VERSION").exists():
            logger.info("initialising embedded PostgreSQL in %s", self.data_dir)
            self._run(
                [
                    str(_bin_dir() / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "-U",
                    SUPERUSER,
                ],
                timeout,
            )
        self._write_settings(listen)
        logger.info(
            "starting embedded PostgreSQL (%s)%s",
            self.data_dir,
            f", listening on {listen}" if listen else "",
        )
        options = f"-k {self.socket_dir} -p {self.port}"
        self._pg_ctl(
            ["start", "-w", "-t", str(int(timeout)), "-l", str(self.log_file), "-o", options],
            timeout + 10,
        )
        deadline = time.monotonic() + timeout
        while self._running_pid() is None:
            if time.monotonic() > deadline:
                raise UserError(f"embedded PostgreSQL did not become ready — see {self.log_file}")
            time.sleep(0.1)

    def _write_settings(self, listen: ListenAddress | None) -> None:
        """Keep our settings in ``postgresql.auto.conf``-style include owned by us."""
        conf = self.data_dir / "golem_tasks.conf"
        settings = dict(self.settings)
        if listen is not None:
            settings["listen_addresses"] = f"'{listen.host}'"
        body = "".join(f"{key} = {value}\n" for key, value in sorted(settings.items()))
        if not conf.exists() or conf.read_text() != body:
            conf.write_text(body)
        hba = self.data_dir / "pg_hba.conf"
        if not hba.exists() or hba.read_text() != HBA:
            hba.write_text(HBA)
        main_conf = self.data_dir / "postgresql.conf"
        include = "include_if_exists = 'golem_tasks.conf'\n"
        text = main_conf.read_text()
        if include not in text:
            main_conf.write_text(text + "\n" + include)
        if self._as_user() is not None:
            shutil.chown(conf, SYSTEM_USER, SYSTEM_USER)

    def _ensure_database(self) -> None:
        with psycopg.connect(self.dsn("postgres"), autocommit=True, connect_timeout=10) as conn:
            exists = conn.execute(queries.database_exists, {"name": DATABASE}).fetchone()
            if not exists:
                with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                    conn.execute(
                        psycopg.sql.SQL(queries.create_database).format(
                            name=psycopg.sql.Identifier(DATABASE)
                        )
                    )
