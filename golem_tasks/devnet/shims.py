"""Programs the devnet puts on ``PATH`` for requestor tools that run them by name.

On a real node these come with yagna (``gftp``, ``yagna``); here each is a module of this
package with a ``main()``, and the devnet writes a tiny launcher for each into a folder it
owns, which its ``env()``, printed ``export`` lines and ``run --devnet`` put first on
``PATH``. To add a program, add one ``(name, module)`` entry to ``SHIMS``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

#: Every program the devnet provides: (name on PATH, module with a ``main()``).
SHIMS: list[tuple[str, str]] = [
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
