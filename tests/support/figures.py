"""Structure figures of issue 8, counted alike before and after: `python -m tests.support.figures`.

Definitions (product code only: every ``.py`` file under ``golem_tasks/`` and ``workers/``):

- *lines*: physical lines of a module (what ``wc -l`` says).
- *SQL call site*: one call expression that sends a statement to PostgreSQL, i.e. a call of
  an attribute named ``execute``, ``executemany``, ``copy`` or ``stream`` whose receiver is
  not the devnet's (the devnet has no database), or of an attribute of the
  ``golem_tasks.db.access`` helpers (``access.one(...)``, ``access.all_rows(...)``,
  ``access.execute(...)``, or those names imported from it).
- *query-name reference*: an attribute of ``queries`` (``queries.get_run``) or a string
  literal naming a query as the first argument after the connection of an access helper.
- *persistence home*: ``golem_tasks/db/`` and ``golem_tasks/store/``; the figure that should
  fall to zero is the call sites and query-name references outside it.
"""

from __future__ import annotations

import argparse
import ast
import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("golem_tasks", "workers")
HOME = ("golem_tasks/db/", "golem_tasks/store/")
_DB_METHODS = {"execute", "executemany", "copy", "stream"}
_ACCESS_HELPERS = {"one", "all_rows", "execute"}


def modules(root: Path = ROOT) -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (root / pkg).rglob("*.py"))


def _access_names(tree: ast.Module) -> tuple[set[str], set[str]]:
    """Names bound to the access module and to its helpers in this module."""
    module_names: set[str] = set()
    helper_names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "golem_tasks.db":
            module_names |= {a.asname or a.name for a in node.names if a.name == "access"}
        if isinstance(node, ast.ImportFrom) and node.module == "golem_tasks.db.access":
            helper_names |= {a.asname or a.name for a in node.names if a.name in _ACCESS_HELPERS}
        if isinstance(node, ast.Import):
            module_names |= {
                a.asname or a.name for a in node.names if a.name == "golem_tasks.db.access"
            }
    return module_names, helper_names


def sql_sites(path: Path, root: Path = ROOT) -> tuple[int, int]:
    """(SQL call sites, query-name references) in one module."""
    rel = path.relative_to(root).as_posix()
    if rel.startswith("golem_tasks/devnet/"):
        return 0, 0
    tree = ast.parse(path.read_text("utf-8"))
    access_modules, access_helpers = _access_names(tree)
    calls = names = 0
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "queries"
        ):
            names += 1
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        via_access = (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id in access_modules
        ) or (isinstance(func, ast.Name) and func.id in access_helpers)
        if via_access:
            calls += 1
            if len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
                names += 1
        elif isinstance(func, ast.Attribute) and func.attr in _DB_METHODS:
            calls += 1
    return calls, names


@dataclass
class Figures:
    modules: int
    lines: int
    largest: list[tuple[str, int]]
    sql_call_sites: int
    modules_calling_sql: int
    sql_call_sites_outside_home: int
    modules_calling_sql_outside_home: list[str]
    query_name_refs_outside_home: int
    modules_naming_queries_outside_home: list[str]
    per_module: dict[str, int]


def figures(root: Path = ROOT) -> Figures:
    lines: dict[str, int] = {}
    calls: Counter[str] = Counter()
    names: Counter[str] = Counter()
    for path in modules(root):
        rel = path.relative_to(root).as_posix()
        lines[rel] = len(path.read_text("utf-8").splitlines())
        calls[rel], names[rel] = sql_sites(path, root)
    outside = [m for m in calls if calls[m] and not m.startswith(HOME)]
    named_outside = [m for m in names if names[m] and not m.startswith(HOME)]
    return Figures(
        modules=len(lines),
        lines=sum(lines.values()),
        largest=sorted(lines.items(), key=lambda item: -item[1])[:10],
        sql_call_sites=sum(calls.values()),
        modules_calling_sql=sum(1 for m in calls if calls[m]),
        sql_call_sites_outside_home=sum(calls[m] for m in outside),
        modules_calling_sql_outside_home=sorted(outside),
        query_name_refs_outside_home=sum(names[m] for m in named_outside),
        modules_naming_queries_outside_home=sorted(named_outside),
        per_module={m: calls[m] for m in sorted(calls) if calls[m]},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    found = figures()
    if args.json:
        print(json.dumps(asdict(found), indent=2))
        return
    print(f"{found.modules} modules, {found.lines} lines")
    print("largest modules:")
    for name, count in found.largest:
        print(f"  {count:5d}  {name}")
    print(
        f"SQL call sites: {found.sql_call_sites} in {found.modules_calling_sql} modules; "
        f"outside the persistence home: {found.sql_call_sites_outside_home} in "
        f"{len(found.modules_calling_sql_outside_home)} modules"
    )
    print(
        f"query-name references outside the persistence home: "
        f"{found.query_name_refs_outside_home} in "
        f"{len(found.modules_naming_queries_outside_home)} modules"
    )
    for name, count in found.per_module.items():
        print(f"  {count:3d}  {name}")


if __name__ == "__main__":
    main()
