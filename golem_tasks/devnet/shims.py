"""Programs the devnet puts on ``PATH`` for requestor tools that run them by name.

On a real node these come with yagna (``gftp``, ``yagna``); here each is a module of this
package with a ``main()``, and the devnet writes a tiny launcher for each into a folder it
owns, which its ``env()``, printed ``export`` lines and ``run --devnet`` put first on
``PATH``. To add a program, add one ``(name, module)`` entry to ``SHIMS``.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

#: Every program the devnet provides: (name on PATH, module with a ``main()``).
SHIMS: list[tuple[str, str]] = [
    ("gftp", "golem_tasks.devnet.gftp"),
    ("yagna", "golem_tasks.devnet.yagna_cli"),
]


def launcher(module: str) -> str:
    return f"#!{sys.executable}\nimport sys\nfrom {module} import main\nsys.exit(main())\n"


def install_shims(folder: Path) -> Path:
    """Write a launcher for every program in ``SHIMS`` into ``folder``; return it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, module in SHIMS:
        path = folder / name
        temporary = folder / f".{name}.tmp"
        temporary.write_text(launcher(module))
        temporary.chmod(0o755)
        os.replace(temporary, path)
    return folder


def path_with(folder: Path, path: str | None = None) -> str:
    """``PATH`` with ``folder`` first (``path`` defaults to this process's)."""
    rest = os.environ.get("PATH", os.defpath) if path is None else path
    return os.pathsep.join([str(folder), *(p for p in rest.split(os.pathsep) if p)])


def main(argv: list[str] | None = None) -> int:
    """``python -m golem_tasks.devnet.shims DIR``: the launchers in DIR, and the ``export
    PATH=...`` line a shell evals, for a worker host other than the devnet's."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m golem_tasks.devnet.shims DIR", file=sys.stderr)
        return 2
    folder = install_shims(Path(args[0]).expanduser().resolve())
    print(f"export PATH={shlex.quote(path_with(folder))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
