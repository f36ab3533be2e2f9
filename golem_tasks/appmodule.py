"""The user's app module: loading it on any host and checking that it has the right shape.

An app module names what to run (``PAYLOAD``), what the tasks are (``get_tasks``) and how
one task runs on an activity (``execute_task``); optional names customise activity set-up,
the results count and per-task limits. See the README for the interface.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import inspect
import itertools
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from golem_tasks.errors import UserError, describe

DEFAULT_TASK_TIMEOUT_S = 300.0
DEFAULT_MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class App:
    """A loaded, checked app module."""

    spec: str  # how workers import it again: a module name or an absolute file path
    module: ModuleType
    payload: Any
    get_tasks: Callable[[str], Any]
    execute_task: Callable[[Any, Any], Awaitable[Any]] | None
    setup_activity: Callable[[Any], Awaitable[Any]] | None
    results_cnt: Callable[[str], Awaitable[int]] | None
    task_timeout_s: float
    max_attempts: int
    #: ``on_result(run_id, key, data, result)``: task data to add from a result (sync or async).
    on_result: Callable[[str, str, Any, Any], Any] | None = None

    @property
    def name(self) -> str:
        return self.module.__name__

    async def follow_ups(self, run_id: str, key: str, data: Any, result: Any) -> list[Any]:
        """The tasks ``on_result`` adds from one result (none without the hook)."""
        if self.on_result is None:
            return []
        produced = self.on_result(run_id, key, data, result)
        if inspect.isawaitable(produced):
            produced = await produced
        if produced is None:
            return []
        if isinstance(produced, (str, bytes, dict)) or not isinstance(produced, Iterable):
            raise TypeError(
                f"on_result returned {type(produced).__name__}, expected an iterable of task data"
            )
        return list(produced)

    async def task_batches(self, run_id: str, size: int) -> AsyncIterator[list[Any]]:
        """``get_tasks(run_id)`` in lists of up to ``size`` items, sync or async.

        A sync iterable is advanced in a thread, so that a slow one (a file, a network
        source) never blocks the supervisor's event loop.
        """
        produced = self.get_tasks(run_id)
        if inspect.isawaitable(produced):
            produced = await produced
        if hasattr(produced, "__aiter__"):
            batch: list[Any] = []
            async for item in produced:
                batch.append(item)
                if len(batch) >= size:
                    yield batch
                    batch = []
            if batch:
                yield batch
            return
        if not isinstance(produced, Iterable):
            raise UserError(
                f"app {self.spec}: get_tasks() returned {type(produced).__name__}, "
                "expected an iterable of task data"
            )
        items = iter(produced)
        while batch := await asyncio.to_thread(lambda: list(itertools.islice(items, size))):
            yield batch


def _import(spec: str) -> tuple[str, ModuleType]:
    """Import by file path (``examples/app.py``) or module name (``mypkg.app``)."""
    path = Path(spec)
    is_path = spec.endswith(".py") or "/" in spec
    if is_path:
        path = path.expanduser().resolve()
        if not path.is_file():
            raise UserError(f"app module {spec!r} not found: no such file {path}")
        name = f"golem_tasks_app_{path.stem}"
        if name in sys.modules and getattr(sys.modules[name], "__file__", None) == str(path):
            return str(path), sys.modules[name]
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise UserError(f"app module {spec!r} cannot be loaded from {path}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        # Let the app import its sibling modules, as `python path/to/app.py` would.
        if str(path.parent) not in sys.path:
            sys.path.insert(0, str(path.parent))
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:
            sys.modules.pop(name, None)
            raise UserError(f"app module {spec!r} failed to import: {describe(exc)}") from exc
        return str(path), module
    try:
        return spec, importlib.import_module(spec)
    except ModuleNotFoundError as exc:
        if exc.name and spec.startswith(exc.name):
            raise UserError(
                f"app module {spec!r} not found: give an importable module name "
                "or a path to a .py file"
            ) from None
        raise UserError(f"app module {spec!r} failed to import: {describe(exc)}") from exc
    except Exception as exc:
        raise UserError(f"app module {spec!r} failed to import: {describe(exc)}") from exc


def _positional_arity(func: Callable[..., Any]) -> tuple[int, int]:
    """(required, maximum) positional parameters; maximum is large for ``*args``."""
    params = inspect.signature(func).parameters.values()
    required = maximum = 0
    for param in params:
        if param.kind == param.VAR_POSITIONAL:
            maximum = 1 << 16
        elif param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            maximum += 1
            if param.default is param.empty:
                required += 1
    return required, maximum


def _check_callable(spec: str, name: str, value: Any, *, args: int, coroutine: bool) -> None:
    what = f"an async function taking {args}" if coroutine else f"a function taking {args}"
    shape = f"app {spec}: {name} must be {what} argument{'s' if args != 1 else ''}"
    if not callable(value):
        raise UserError(f"{shape}, not {type(value).__name__}")
    if coroutine and not inspect.iscoroutinefunction(value):
        raise UserError(f"{shape} (define it with 'async def')")
    try:
        required, maximum = _positional_arity(value)
    except (TypeError, ValueError):  # builtins without a signature: trust them
        return
    if not required <= args <= maximum:
        raise UserError(f"{shape}, it takes {required}..{maximum}")


def _number(spec: str, module: ModuleType, name: str, default: float, *, integer: bool) -> Any:
    value = getattr(module, name, default)
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or value <= 0:
        kind = "a positive integer" if integer else "a positive number of seconds"
        raise UserError(f"app {spec}: {name} must be {kind}, not {value!r}")
    return int(value) if integer else float(value)


def load_app(spec: str, *, require_execute_task: bool = True) -> App:
    """Import and check an app module; a wrong or missing name is a one-line UserError.

    ``require_execute_task=False`` admits the callable style, where ``get_tasks`` yields
    async callables taking an activity (only under ``golem-tasks run``).
    """
    resolved, module = _import(spec)
    label = spec
    if not hasattr(module, "PAYLOAD"):
        raise UserError(f"app {label}: missing PAYLOAD (a golem-core payload)")
    payload = module.PAYLOAD
    from golem.payload import Payload

    if not isinstance(payload, Payload):
        raise UserError(
            f"app {label}: PAYLOAD must be a golem-core payload such as "
            f"RepositoryVmPayload(image_hash), not {type(payload).__name__}"
        )
    if not hasattr(module, "get_tasks"):
        raise UserError(f"app {label}: missing get_tasks(run_id)")
    _check_callable(label, "get_tasks", module.get_tasks, args=1, coroutine=False)
    execute_task = getattr(module, "execute_task", None)
    if execute_task is None and require_execute_task:
        raise UserError(f"app {label}: missing execute_task(activity, data)")
    if execute_task is not None:
        _check_callable(label, "execute_task", execute_task, args=2, coroutine=True)
    setup_activity = getattr(module, "setup_activity", None)
    if setup_activity is not None:
        _check_callable(label, "setup_activity", setup_activity, args=1, coroutine=True)
    results_cnt = getattr(module, "results_cnt", None)
    if results_cnt is not None:
        _check_callable(label, "results_cnt", results_cnt, args=1, coroutine=True)
    on_result = getattr(module, "on_result", None)
    if on_result is not None:
        _check_callable(label, "on_result", on_result, args=4, coroutine=False)
    return App(
        spec=resolved,
        module=module,
        payload=payload,
        get_tasks=module.get_tasks,
        execute_task=execute_task,
        setup_activity=setup_activity,
        results_cnt=results_cnt,
        task_timeout_s=_number(
            label, module, "TASK_TIMEOUT", DEFAULT_TASK_TIMEOUT_S, integer=False
        ),
        max_attempts=_number(label, module, "MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS, integer=True),
        on_result=on_result,
    )


class CallableTasks:
    """Tasks given as callables (the original style): they stay in this process."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str], Callable[[Any], Any]] = {}

    def add(self, run_id: str, key: str, func: Callable[[Any], Any]) -> None:
        self._by_key[(run_id, key)] = func

    def get(self, run_id: str, key: str) -> Callable[[Any], Any] | None:
        return self._by_key.get((run_id, key))


def describe_callable(func: Callable[..., Any]) -> dict[str, str]:
    name = getattr(func, "__qualname__", None) or type(func).__name__
    return {"callable": f"{getattr(func, '__module__', '?')}.{name}"}
