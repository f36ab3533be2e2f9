"""Activities: a simulated exe-unit per activity that really runs what it is asked to.

State machine and messages follow yagna's exe-unit: ``deploy`` (Initialized -> Deployed),
``start`` (Deployed -> Ready), then ``run``/``transfer`` any number of times; a command in
the wrong state fails with the exe-unit's own message, a stateful command while another is
running fails with ``Busy``. A batch stops at its first failing command. ``terminate``
resets the exe-unit to Initialized: it stops every other batch of the activity and kills
every process the activity started.

Paths. Every activity has its own directory ``<devnet tmp>/<activity id>/`` that stands for
the container's root filesystem, with ``/golem/work`` (the working directory),
``/golem/input``, ``/golem/output`` and ``/golem/resources`` created at deploy.

* ``run``: the entry point and arguments run as a local process with the host's programs
  (``/bin/sh``, ``python3`` ...); every ``/golem/...`` path in the entry point or in any
  argument (also inside a shell command string) is rewritten to the activity directory.
  The working directory is ``/golem/work``; the environment is a minimal one (``PATH``,
  ``HOME=/golem/work``, ``XDG_DATA_HOME`` under it, ``LANG``, and the host user's
  ``XDG_CACHE_HOME`` so compiled caches are shared) plus the ``env`` given to ``deploy``,
  plus the activity's mark (see :mod:`process`).
* ``transfer``: see :mod:`transfer`.

Processes. When an activity ends (destroyed, crashed, its agreement terminated, the devnet
stopped) or is reset by ``terminate``, its batches are cancelled, the process groups of its
running commands are killed, and then every process still marked as the activity's
(background and ``setsid`` children included) is found in ``/proc`` and killed, before
its directory is removed.

Output. Each stream of each command keeps at most ``MAX_CAPTURE`` bytes (less when its
capture mode says so), once: streamed runtime events point into the kept bytes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import shutil
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

from golem_tasks.devnet.clock import Clock, isoformat
from golem_tasks.devnet.errors import (
    BadRequest,
    NotFound,
    gsb_endpoint_not_found,
    unknown_activity,
)
from golem_tasks.devnet.events import Signal, wait_until
from golem_tasks.devnet.exescript import (
    MAX_CAPTURE,
    Capture,
    Command,
    parse_script,
    run_captures,
)
from golem_tasks.devnet.process import MARKER, RunningProcess, kill_marked
from golem_tasks.devnet.providers import Provider
from golem_tasks.devnet.transfer import TransferError, transfer

logger = logging.getLogger(__name__)

VOLUMES = ("work", "input", "output", "resources")
#: Finished batches an activity keeps (older ones are forgotten: their id gives 404).
MAX_BATCHES = 1000
#: Real seconds the batches of a terminated activity stay readable.
BATCH_RETENTION = 120.0
_GOLEM_PATH = re.compile(r"(?<![\w.~/-])/golem(?=/|$|[\s'\";&|)<>])")
RESET_MESSAGE = "Interrupted: a terminate command reset the exe-unit"


class Output:
    """One captured stream of one command, trimmed as its capture mode asks.

    ``head`` keeps the first bytes (all of them up to MAX_CAPTURE without a limit),
    ``tail`` the last ``capture.tail`` bytes of the rest.
    """

    __slots__ = ("capture", "head", "head_limit", "tail")

    def __init__(self, capture: Capture | None) -> None:
        self.capture = capture
        self.head = bytearray()
        self.tail = bytearray()
        if capture is None:
            self.head_limit = 0
        elif capture.head is None and capture.tail is None:
            self.head_limit = MAX_CAPTURE
        else:
            self.head_limit = capture.head or 0

    def write(self, data: bytes) -> tuple[int, int] | None:
        """Keep ``data``; return the span of ``head`` to stream (None when not streamed)."""
        capture = self.capture
        if capture is None:
            return None
        start = len(self.head)
        room = self.head_limit - start
        if room > 0:
            self.head += data[:room] if len(data) > room else data
        kept = len(self.head) - start
        if capture.tail and kept < len(data):
            self.tail += data[kept:]
            del self.tail[: max(0, len(self.tail) - capture.tail)]
        return (start, start + kept) if capture.stream and kept else None

    def text(self, start: int, end: int) -> str | list[int]:
        """The kept bytes ``head[start:end]`` as the capture's format wants them."""
        data = bytes(self.head[start:end])
        if self.capture is not None and self.capture.binary:
            return list(data)
        return data.decode("utf-8", errors="replace")

    def value(self) -> str | list[int] | None:
        if self.capture is None:
            return None
        data = bytes(self.head) + bytes(self.tail)
        if not data:
            return None
        if self.capture.binary:
            return list(data)
        return data.decode("utf-8", errors="replace")


@dataclass(eq=False)
class CommandState:
    stdout: Output
    stderr: Output
    result: str | None = None
    message: str | None = None
    date: datetime | None = None


@dataclass(frozen=True)
class Chunk:
    """A streamed piece of output: where it lies in its Output's kept bytes."""

    stream: str  # "stdout" or "stderr"
    output: Output
    start: int
    end: int


@dataclass(frozen=True)
class RuntimeEntry:
    """One runtime event of a batch; output is materialized only when it is sent."""

    index: int
    timestamp: str
    kind: dict[str, Any] | Chunk


@dataclass(eq=False)
class Batch:
    id: str
    commands: list[Command]
    states: list[CommandState] = field(default_factory=list)
    events: list[RuntimeEntry] = field(default_factory=list)
    signal: Signal = field(default_factory=Signal)
    done: bool = False
    task: asyncio.Task | None = None
    processes: set[RunningProcess] = field(default_factory=set)

    def finished_through(self, index: int) -> bool:
        return self.done or (len(self.states) > index and self.states[index].result is not None)

    def runtime_event(self, entry: RuntimeEntry) -> dict[str, Any]:
        """The RuntimeEvent of ``entry`` in yagna's shape (see the README on deviations)."""
        kind = entry.kind
        if isinstance(kind, Chunk):
            kind = {kind.stream: kind.output.text(kind.start, kind.end)}
        return {
            "batch_id": self.id,
            "batchId": self.id,
            "index": entry.index,
            "timestamp": entry.timestamp,
            "kind": kind,
        }

    def results(self, command_index: int | None) -> list[dict[str, Any]]:
        """yagna's ExeScriptCommandResult list, up to ``command_index`` (default: all)."""
        last = len(self.commands) - 1 if command_index is None else command_index
        out = []
        for index, state in enumerate(self.states):
            if index > last or state.result is None:
                break
            with_output = command_index is None or command_index == index
            item: dict[str, Any] = {
                "index": index,
                "eventDate": isoformat(state.date) if state.date else None,
                "result": state.result,
                "isBatchFinished": index == last or state.result == "Error",
            }
            if with_output:
                stdout, stderr = state.stdout.value(), state.stderr.value()
                if stdout is not None:
                    item["stdout"] = stdout
                if stderr is not None:
                    item["stderr"] = stderr
            if state.message is not None:
                item["message"] = state.message
            out.append(item)
        return out


@dataclass(eq=False)
class Activity:
    id: str
    agreement_id: str
    provider: Provider
    root: Path
    created: datetime
    created_at: float  # loop time
    state: str = "Initialized"
    pending: str | None = None
    reason: str | None = None
    error_message: str | None = None
    ended_at: float | None = None
    cpu_seconds: float = 0.0
    env: dict[str, str] = field(default_factory=dict)
    batches: dict[str, Batch] = field(default_factory=dict)
    doom: asyncio.TimerHandle | None = None
    #: Bumped by every reset and by the end: a command that started in an earlier
    #: generation must not change the state when it returns.
    generation: int = 0
    #: Whether a process was ever started (only then is /proc searched at the end).
    spawned: bool = False
    #: Blocking work in threads still going on (waited for before the directory goes).
    io: set[asyncio.Future] = field(default_factory=set)

    @property
    def alive(self) -> bool:
        return self.state != "Terminated"

    def state_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"state": [self.state, self.pending]}
        if self.reason is not None:
            body["reason"] = self.reason
        if self.error_message is not None:
            body["errorMessage"] = self.error_message
        return body

    def map_arg(self, text: str) -> str:
        return _GOLEM_PATH.sub(lambda _: str(self.root / "golem"), text)

    async def offload(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run blocking ``function`` in a thread; the activity's end waits for it."""
        future = asyncio.get_running_loop().run_in_executor(None, function, *args)
        self.io.add(future)
        future.add_done_callback(self.io.discard)
        return await asyncio.shield(future)


def _invalid_state_message(state: str) -> str:
    if state == "Initialized":
        return "Activity is initialized - deploy() command is expected now"
    if state == "Deployed":
        return "Activity is deployed - start() command is expected now"
    if state == "Ready":
        return "Cannot send command after a successful start()"
    return f"This command is not allowed when activity is in the {state} state"


def _naive(moment: datetime) -> str:
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds")


class ExeUnits:
    """All activities of the devnet and the execution of their batches."""

    def __init__(self, clock: Clock, root: Path) -> None:
        self.clock = clock
        self.root = root
        self.activities: dict[str, Activity] = {}
        self._session: aiohttp.ClientSession | None = None
        self.base_env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            # Tools that compile and cache (hashcat's OpenCL kernels) do it once per machine,
            # not once per activity, whose HOME is its own new directory.
            "XDG_CACHE_HOME": os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache"),
        }
        #: Threads that fork the processes of ``run`` (see :meth:`RunningProcess.start`).
        self._spawner = ThreadPoolExecutor(max_workers=4, thread_name_prefix="devnet-spawn")
        #: Ends of activities still cleaning up (killing processes, removing directories).
        self._cleanups: set[asyncio.Task] = set()
        #: While closing, ended activities are cleaned up together, with one /proc scan.
        self._closing: list[tuple[Activity, list[asyncio.Task]]] | None = None
        #: Called when an activity ends on its own (crash), to let the provider react.
        self.on_crash: Callable[[Activity], None] = lambda activity: None

    async def close(self) -> None:
        ending: list[tuple[Activity, list[asyncio.Task]]] = []
        self._closing = ending
        for activity in list(self.activities.values()):
            self.terminate(activity, reason="Devnet shut down")
        while self._cleanups:
            await asyncio.gather(*self._cleanups, return_exceptions=True)
        if ending:
            await self._clean_up([activity for activity, _ in ending], ending)
        if self._session is not None:
            await self._session.close()
        self._spawner.shutdown(wait=False)

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            # No overall limit (a large file takes what it takes), but a peer that stops
            # answering (a gftp server stopped mid-transfer) fails the command, never hangs it.
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=60)
            self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session

    # ------------------------------------------------------------------ lifecycle
    def create(self, agreement_id: str, provider: Provider) -> Activity:
        activity_id = secrets.token_hex(16)
        activity = Activity(
            id=activity_id,
            agreement_id=agreement_id,
            provider=provider,
            root=self.root / activity_id,
            created=self.clock.now(),
            created_at=asyncio.get_running_loop().time(),
        )
        self.activities[activity_id] = activity
        faults = provider.faults
        if faults.die_after_sec is not None and provider.chance("die", faults.die_probability):
            activity.doom = asyncio.get_running_loop().call_later(
                self.clock.real_seconds(faults.die_after_sec), self.crash, activity
            )
        return activity

    def get(self, activity_id: str) -> Activity:
        activity = self.activities.get(activity_id)
        if activity is None:
            raise unknown_activity(activity_id)
        return activity

    def live(self, activity_id: str) -> Activity:
        """An activity whose exe-unit still answers (yagna: GSB error once it is gone)."""
        activity = self.get(activity_id)
        if not activity.alive:
            raise gsb_endpoint_not_found(f"/net/{activity.provider.node_id}/exeunit/{activity.id}")
        return activity

    def crash(self, activity: Activity) -> None:
        if activity.alive:
            logger.info("activity %s: exe-unit crashed (devnet fault)", activity.id)
            self.terminate(
                activity,
                reason="ExeUnit crashed",
                error_message="ExeUnit terminated unexpectedly (devnet fault: die_after_sec)",
            )
            self.on_crash(activity)

    def terminate(
        self, activity: Activity, reason: str | None = None, error_message: str | None = None
    ) -> None:
        """End the activity: stop its batches and processes, freeze its usage, then (in the
        background) kill what its commands left running and remove its directory."""
        if not activity.alive:
            return
        activity.cpu_seconds = self._cpu(activity)
        activity.state, activity.pending = "Terminated", None
        activity.reason, activity.error_message = reason, error_message
        activity.ended_at = asyncio.get_running_loop().time()
        activity.generation += 1
        if activity.doom is not None:
            activity.doom.cancel()
            activity.doom = None
        tasks = self._stop_batches(activity, None)
        if self._closing is not None:
            self._closing.append((activity, tasks))
            return
        cleanup = asyncio.get_running_loop().create_task(
            self._clean_up([activity], [(activity, tasks)])
        )
        self._cleanups.add(cleanup)
        cleanup.add_done_callback(self._cleanups.discard)

    @staticmethod
    def _stop_batches(activity: Activity, keep: Batch | None) -> list[asyncio.Task]:
        """Cancel every batch of the activity but ``keep`` and kill their processes."""
        tasks = []
        for batch in activity.batches.values():
            if batch is keep:
                continue
            if batch.task is not None and not batch.task.done():
                batch.task.cancel()
                tasks.append(batch.task)
            for process in batch.processes:
                process.kill()
            batch.signal.fire()
        return tasks

    async def _clean_up(
        self, activities: list[Activity], stopping: list[tuple[Activity, list[asyncio.Task]]]
    ) -> None:
        """Once their batches and threads are done, kill what the activities left running,
        then remove their directories."""
        tasks = [task for _, batch_tasks in stopping for task in batch_tasks]
        if tasks:
            await asyncio.wait(tasks)
        for activity in activities:
            while activity.io:
                await asyncio.wait(set(activity.io))
        try:
            await asyncio.get_running_loop().run_in_executor(None, self._remove, activities)
        except Exception:
            logger.exception("cleanup of %d activities failed", len(activities))

    def _remove(self, activities: list[Activity]) -> None:
        spawned = [activity.id for activity in activities if activity.spawned]
        if spawned:
            killed = kill_marked(spawned, self.root)
            if killed:
                logger.info("killed %d processes left by %d activities", killed, len(spawned))
        for activity in activities:
            shutil.rmtree(activity.root, ignore_errors=True)

    async def _reset(self, activity: Activity, batch: Batch) -> None:
        """The ``terminate`` command: back to Initialized, with nothing left running."""
        activity.cpu_seconds = self._cpu(activity)  # what the stopped commands used so far
        activity.generation += 1
        activity.state, activity.pending = "Initialized", None
        tasks = self._stop_batches(activity, batch)
        if tasks:
            await asyncio.wait(tasks)
        if activity.spawned:
            await activity.offload(kill_marked, [activity.id], self.root)

    # ------------------------------------------------------------------ memory
    def prune(self, retention: float) -> list[Activity]:
        """Forget batches of activities ended BATCH_RETENTION ago (at most ``retention``),
        and the activities themselves after ``retention``; returns the activities gone."""
        now = asyncio.get_running_loop().time()
        gone = []
        for activity in list(self.activities.values()):
            if activity.ended_at is None:
                continue
            age = now - activity.ended_at
            if age > min(BATCH_RETENTION, retention):
                activity.batches.clear()
            if age > retention and not activity.io:
                del self.activities[activity.id]
                gone.append(activity)
        return gone

    # ------------------------------------------------------------------ usage
    def _cpu(self, activity: Activity) -> float:
        running = sum(
            process.cpu_seconds()
            for batch in activity.batches.values()
            for process in batch.processes
        )
        return activity.cpu_seconds + running

    def usage(self, activity: Activity) -> list[float]:
        """``[golem.usage.cpu_sec, golem.usage.duration_sec]``, measured."""
        end = activity.ended_at
        if end is None:
            end = asyncio.get_running_loop().time()
        cpu = self._cpu(activity) if activity.alive else activity.cpu_seconds
        return [round(cpu, 6), round(max(0.0, end - activity.created_at), 6)]

    # ------------------------------------------------------------------ exec
    def exec(self, activity: Activity, text: Any) -> str:
        commands = parse_script(text)
        batch = Batch(id=secrets.token_hex(16), commands=commands)
        activity.batches[batch.id] = batch
        if len(activity.batches) > MAX_BATCHES:
            self._forget_old_batches(activity)
        batch.task = asyncio.get_running_loop().create_task(self._run_batch(activity, batch))
        batch.task.add_done_callback(lambda _: self._finished(batch))
        return batch.id

    def _finished(self, batch: Batch) -> None:
        """A batch's task is over, however it ended (also cancelled before it started)."""
        if batch.commands and not batch.states:
            state = CommandState(Output(None), Output(None), "Error", "Batch cancelled")
            state.date = self.clock.now()
            batch.states.append(state)
        batch.done = True
        batch.signal.fire()

    @staticmethod
    def _forget_old_batches(activity: Activity) -> None:
        """Bound memory on long-lived activities: drop the oldest finished batches."""
        excess = len(activity.batches) - MAX_BATCHES
        for batch_id in [b.id for b in activity.batches.values() if b.done][:excess]:
            del activity.batches[batch_id]

    def batch(self, activity: Activity, batch_id: str) -> Batch:
        batch = activity.batches.get(batch_id)
        if batch is None:
            raise NotFound(f"batch_id = {batch_id}")
        return batch

    async def results(
        self, activity: Activity, batch_id: str, timeout: float, command_index: int | None
    ) -> list[dict[str, Any]]:
        batch = self.batch(activity, batch_id)
        if not batch.commands:
            return []
        if command_index is not None and command_index >= len(batch.commands):
            raise BadRequest(f"commandIndex {command_index} out of range")
        target = len(batch.commands) - 1 if command_index is None else command_index
        # A batch cut short by the end of its activity still finishes (its running command
        # fails), so results stay readable after the exe-unit is gone.
        # yagna answers 408 when ``commandIndex`` is not done in time; the contract has no
        # 408 here, so the devnet answers the results so far (the index is then missing).
        await wait_until(
            lambda: batch.finished_through(target),
            batch.signal,
            timeout,
            asyncio.get_running_loop().time,
        )
        return batch.results(command_index)

    async def stream(
        self, activity: Activity, batch_id: str, keepalive: float = 15.0
    ) -> AsyncIterator[dict[str, Any] | None]:
        """Runtime events of a batch: everything so far, then live until the batch ends.

        ``None`` after ``keepalive`` seconds without news: time for a ping (as yagna does).
        """
        batch = self.batch(activity, batch_id)
        position = 0
        while True:
            if position == len(batch.events) and not batch.done:
                await batch.signal.wait(keepalive)
                if position == len(batch.events) and not batch.done:
                    yield None
                    continue
            while position < len(batch.events):
                yield batch.runtime_event(batch.events[position])
                position += 1
            if batch.done and position == len(batch.events):
                return

    def _event(self, batch: Batch, index: int, kind: dict[str, Any] | Chunk) -> None:
        batch.events.append(RuntimeEntry(index, _naive(self.clock.now()), kind))
        batch.signal.fire()

    async def _run_batch(self, activity: Activity, batch: Batch) -> None:
        for index, command in enumerate(batch.commands):
            stdout, stderr = run_captures(command)
            state = CommandState(Output(stdout), Output(stderr))
            batch.states.append(state)
            self._event(batch, index, {"started": {"command": command.raw}})
            cancelled = False
            try:
                code, message = await self._execute(activity, batch, index, command)
            except asyncio.CancelledError:  # the activity ended, or was reset
                cancelled = True
                code = -1
                message = RESET_MESSAGE if activity.alive else self._ended_message(activity)
            except Exception as exc:  # a devnet bug must not leave the batch hanging
                logger.exception("activity %s: command %d crashed", activity.id, index)
                code, message = -1, f"devnet internal error: {exc}"
            state.result = "Ok" if code == 0 else "Error"
            state.message = message
            state.date = self.clock.now()
            # yagna sends "message": null for a command that succeeded.
            self._event(
                batch,
                index,
                {"finished": {"return_code": code, "returnCode": code, "message": message}},
            )
            if code != 0 or cancelled:
                break

    @staticmethod
    def _ended_message(activity: Activity) -> str:
        return activity.error_message or "Activity terminated"

    def _output(self, batch: Batch, index: int, stream: str) -> Callable[[bytes], None]:
        state = batch.states[index]
        output = state.stdout if stream == "stdout" else state.stderr

        def sink(data: bytes) -> None:
            span = output.write(data)
            if span is not None:
                self._event(batch, index, Chunk(stream, output, *span))

        return sink

    async def _execute(
        self, activity: Activity, batch: Batch, index: int, command: Command
    ) -> tuple[int, str | None]:
        if not activity.alive:
            return -1, self._ended_message(activity)
        if command.name == "sign":
            self._output(batch, index, "stdout")(b'{"signature":"NoSignature"}')
            return 0, None
        if command.name == "terminate":
            await self._reset(activity, batch)
            return 0, None
        if activity.pending is not None:
            return -1, f"Busy: StatePair({activity.state}, Some({activity.pending}))"
        current = activity.state
        if command.name == "deploy":
            target = "Deployed" if current == "Initialized" else None
        elif command.name == "start":
            target = "Ready" if current == "Deployed" else None
        else:
            target = current if current not in ("Initialized", "Deployed") else None
        if target is None:
            return -1, _invalid_state_message(current)
        generation = activity.generation
        activity.pending = target
        try:
            code, message = await self._stateful(activity, batch, index, command)
        finally:
            if activity.generation == generation:
                activity.pending = None
        if not activity.alive:
            return -1, self._ended_message(activity)
        if activity.generation != generation:  # reset meanwhile: the state is not ours
            return -1, RESET_MESSAGE
        if code == 0 or command.name != "deploy":
            activity.state = target
        return code, message

    async def _stateful(
        self, activity: Activity, batch: Batch, index: int, command: Command
    ) -> tuple[int, str | None]:
        provider = activity.provider
        faults = provider.faults
        if command.name == "deploy":
            if provider.spec.deploy_sec > 0:
                await asyncio.sleep(provider.spec.deploy_sec * faults.slowdown)
            if provider.chance("deploy_failure", faults.deploy_failure):
                return -1, "Deployment failed: image download failed (devnet fault: deploy_failure)"
            await activity.offload(self._make_volumes, activity)
            activity.env.update(command.args.get("env") or {})
            return 0, None
        if command.name == "start":
            return 0, None
        if command.name == "transfer":
            try:
                await transfer(
                    command.args["from"],
                    command.args["to"],
                    activity.root,
                    self.session(),
                    activity.offload,
                )
            except (TransferError, OSError) as exc:
                return -1, f"Transfer error: {exc}"
            return 0, None
        return await self._run(activity, batch, index, command)

    @staticmethod
    def _make_volumes(activity: Activity) -> None:
        for volume in VOLUMES:
            (activity.root / "golem" / volume).mkdir(parents=True, exist_ok=True)

    async def _run(
        self, activity: Activity, batch: Batch, index: int, command: Command
    ) -> tuple[int, str | None]:
        faults = activity.provider.faults
        if activity.provider.chance("command_failure", faults.command_failure):
            self._output(batch, index, "stderr")(b"devnet: injected command failure\n")
            return 1, "ExeScript command exited with code 1"
        entry = command.args["entry_point"]
        argv = [
            activity.map_arg(entry),
            *(activity.map_arg(a) for a in command.args.get("args", [])),
        ]
        home = activity.root / "golem" / "work"
        env = {
            **self.base_env,
            "HOME": str(home),
            # Tools that find their data through the user database, not HOME (hashcat's
            # sessions and pid file), keep it per activity too, as in a provider's VM.
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            **activity.env,
            MARKER: activity.id,
        }
        workdir = activity.root / "golem" / "work"
        loop = asyncio.get_running_loop()
        started = loop.time()
        activity.spawned = True
        try:
            process = await RunningProcess.start(
                argv,
                workdir,
                env,
                self._output(batch, index, "stdout"),
                self._output(batch, index, "stderr"),
                self._spawner,
            )
        except OSError as exc:
            return -1, f"Runtime error: cannot execute '{entry}': {exc.strerror or exc}"
        batch.processes.add(process)
        try:
            exit_ = await process.wait()
        finally:
            batch.processes.discard(process)
        if activity.alive:  # a terminated activity's usage is frozen
            activity.cpu_seconds += exit_.cpu_seconds
        if faults.slowdown > 1.0:
            await asyncio.sleep((faults.slowdown - 1.0) * (loop.time() - started))
        if not activity.alive:
            return -1, self._ended_message(activity)
        if exit_.code != 0:
            return exit_.code, f"ExeScript command exited with code {exit_.code}"
        return 0, None
