"""Versioned schema: ordered migrations, a version table and an install lock.

``install`` applies, in one transaction under an advisory lock, every migration the
database does not have yet; a second install on an up-to-date database changes nothing.
The bundled migrations are the ``.sql`` files in ``db/migrations/`` plus procrastinate's
own schema, which lives in the ``procrastinate`` PostgreSQL schema.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from psycopg import sql
from psycopg.rows import tuple_row

from golem_tasks.db.queries import queries
from golem_tasks.db.types import Connection

#: The PostgreSQL schema that holds procrastinate's tables and functions.
PROCRASTINATE_SCHEMA = "procrastinate"
#: The migration version procrastinate's schema is installed as.
PROCRASTINATE_VERSION = 2
_FILE = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str = field(repr=False)
    #: Run with this search_path (for SQL that does not qualify its names).
    search_path: str | None = None

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class InstallResult:
    applied: list[Migration]
    version: int


def from_directory(path: Path) -> list[Migration]:
    """Migrations from ``NNNN_name.sql`` files, in version order."""
    found = []
    for entry in sorted(path.iterdir()):
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match["version"]), match["name"], entry.read_text()))
    return found


def _procrastinate_schema() -> Migration:
    from procrastinate.schema import SchemaManager

    return Migration(
        PROCRASTINATE_VERSION,
        "procrastinate_schema",
        SchemaManager.get_schema(),
        PROCRASTINATE_SCHEMA,
    )


def _directory() -> Path:
    return Path(str(resources.files("golem_tasks.db").joinpath("migrations")))


def bundled() -> list[Migration]:
    """Every migration this version of golem-tasks knows, in order."""
    migrations = [*from_directory(_directory()), _procrastinate_schema()]
    migrations.sort(key=lambda m: m.version)
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions: {versions}")
    return migrations


def latest_version(migrations: Sequence[Migration] | None = None) -> int:
    if migrations is None:
        # From the file names alone: every command checks the schema, and loading
        # procrastinate's schema only to learn its fixed version costs a tenth of a second.
        names = (entry.name for entry in _directory().iterdir())
        found = [int(match["version"]) for name in names if (match := _FILE.match(name))]
        return max([*found, PROCRASTINATE_VERSION])
    return max(m.version for m in migrations)


async def current_version(conn: Connection) -> int | None:
    """The schema version of the database; ``None`` when it has no golem-tasks schema."""
    cur = conn.cursor(row_factory=tuple_row)
    row = await (await cur.execute(queries.schema_present)).fetchone()
    if not row or not row[0]:
        return None
    row = await (await cur.execute(queries.schema_version)).fetchone()
    return int(row[0]) if row else 0


async def install(conn: Connection, migrations: Sequence[Migration] | None = None) -> InstallResult:
    """Apply the missing migrations atomically; safe to run concurrently and repeatedly."""
    migrations = list(migrations if migrations is not None else bundled())
    applied: list[Migration] = []
    async with conn.transaction():
        await conn.execute(queries.install_lock)
        await conn.execute(queries.create_migration_table)
        cur = conn.cursor(row_factory=tuple_row)
        rows = await (await cur.execute(queries.applied_migrations)).fetchall()
        done = {row[0] for row in rows}
        for migration in migrations:
            if migration.version in done:
                continue
            if migration.search_path:
                await conn.execute(
                    sql.SQL(queries.create_schema).format(
                        name=sql.Identifier(migration.search_path)
                    )
                )
                await conn.execute(queries.set_local_search_path, {"path": migration.search_path})
            await conn.execute(migration.sql.encode())
            if migration.search_path:
                await conn.execute(queries.reset_search_path)
            await conn.execute(
                queries.record_migration,
                {
                    "version": migration.version,
                    "name": migration.name,
                    "checksum": migration.checksum,
                },
            )
            applied.append(migration)
        version = max([*done, *(m.version for m in applied)], default=0)
    return InstallResult(applied, version)
