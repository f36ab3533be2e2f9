"""The devnet: a local Golem network behind yagna's REST API, for development and tests.

``Devnet`` (an async context manager) runs it inside the current event loop; the
``golem-tasks devnet`` command runs it as a process. See the README's "Devnet" section.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from golem_tasks.devnet.runner import Devnet

__all__ = ["Devnet"]


def __getattr__(name: str) -> Any:
    # Lazy, so that importing a light submodule (e.g. constraints) does not start aiohttp.
    if name == "Devnet":
        from golem_tasks.devnet.runner import Devnet

        return Devnet
    raise AttributeError(name)
