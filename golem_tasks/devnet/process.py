"""Run one local process without a thread: pipes and a pidfd watched by the event loop.

asyncio's subprocess support waits for children with a helper thread per process and
cannot report CPU time per child. Here the child's exit is noticed through a pidfd
(Linux >= 5.3) and reaped with ``wait4``, which also yields its rusage: the activity's
``golem.usage.cpu_sec`` counter is the CPU time its processes really used.

Finding what a command left behind. A command may start processes that outlive it in
other process groups or sessions (``cmd &``, ``setsid cmd``, daemons), where killing its
group does not reach them. Every process an activity starts carries the activity's id in
its environment (``GOLEM_DEVNET_ACTIVITY``) and starts in the activity's directory, and
children inherit both; :func:`kill_marked` scans ``/proc`` for processes that carry the
mark or whose working directory is inside an activity's directory, and kills them. A
process that both clears its environment and leaves the activity's directory escapes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import IO

logger = logging.getLogger(__name__)

READ_CHUNK = 65536
#: The environment variable that marks every process of an activity with its id.
MARKER = "GOLEM_DEVNET_ACTIVITY"
_MARKER = MARKER.encode() + b"="
#: After the main process exits, wait this long for its pipes to close (background
#: children may hold them open) before giving up on the rest of the output.
PIPE_GRACE = 1.0


@dataclass(frozen=True)
class Exit:
    code: int
    cpu_seconds: float


class RunningProcess:
    """A started child: collect its output through callbacks, await its exit.

    Create it with :meth:`start`, which forks in a worker thread: forking releases the GIL,
    so the event loop keeps serving requests while processes are being spawned.
    """

    def __init__(
        self,
        popen: subprocess.Popen,
        on_stdout: Callable[[bytes], None],
        on_stderr: Callable[[bytes], None],
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._popen = popen
        self.pid = popen.pid
        self._exited: asyncio.Future[Exit] = self._loop.create_future()
        self._open_pipes = 2
        self._pipes_closed = self._loop.create_future()
        assert popen.stdout is not None and popen.stderr is not None
        for pipe, sink in ((popen.stdout, on_stdout), (popen.stderr, on_stderr)):
            fd = pipe.fileno()
            os.set_blocking(fd, False)
            self._loop.add_reader(fd, self._read, pipe, sink)
        try:
            self._pidfd: int | None = os.pidfd_open(self.pid)
        except (AttributeError, OSError):  # pragma: no cover - old kernels
            self._pidfd = None
        if self._pidfd is not None:
            self._loop.add_reader(self._pidfd, self._reap)
            self._reap()  # it may have exited already
        else:  # pragma: no cover - old kernels: poll
            self._poll_handle = self._loop.call_later(0.01, self._poll)

    @classmethod
    async def start(
        cls,
        argv: Sequence[str],
        cwd: Path,
        env: Mapping[str, str],
        on_stdout: Callable[[bytes], None],
        on_stderr: Callable[[bytes], None],
        executor: Executor | None = None,
    ) -> RunningProcess:
        """Spawn ``argv`` in ``cwd`` (its own session, so it can be killed with its children).

        Raises OSError when the program cannot be executed.
        """
        spawn = functools.partial(
            subprocess.Popen,
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        spawned = asyncio.get_running_loop().run_in_executor(executor, spawn)
        try:
            popen = await asyncio.shield(spawned)
        except asyncio.CancelledError:
            # The fork goes on in its thread: kill what it starts, so nothing runs unseen.
            spawned.add_done_callback(cls._kill_orphan)
            raise
        return cls(popen, on_stdout, on_stderr)

    @classmethod
    def _kill_orphan(cls, spawned: asyncio.Future[subprocess.Popen]) -> None:
        if spawned.cancelled() or spawned.exception() is not None:
            return
        ignore = lambda data: None  # noqa: E731
        cls(spawned.result(), ignore, ignore).kill()

    def _read(self, pipe: IO[bytes], sink: Callable[[bytes], None]) -> None:
        fd = pipe.fileno()
        try:
            data = os.read(fd, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            sink(data)
            return
        self._close_pipe(pipe)

    def _close_pipe(self, pipe: IO[bytes]) -> None:
        if pipe.closed:
            return
        self._loop.remove_reader(pipe.fileno())
        pipe.close()
        self._open_pipes -= 1
        if self._open_pipes == 0 and not self._pipes_closed.done():
            self._pipes_closed.set_result(None)

    def _reap(self) -> None:
        try:
            pid, status, usage = os.wait4(self.pid, os.WNOHANG)
        except ChildProcessError:  # reaped elsewhere; no rusage to report
            pid, status, usage = self.pid, 0, None
        if pid == 0:
            return
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        code = os.waitstatus_to_exitcode(status) if usage is not None else -1
        # Tell Popen the child is gone so it never tries to reap it again.
        self._popen.returncode = code
        cpu = usage.ru_utime + usage.ru_stime if usage is not None else 0.0
        if not self._exited.done():
            self._exited.set_result(Exit(code=code, cpu_seconds=cpu))

    def _poll(self) -> None:  # pragma: no cover - fallback without pidfd
        self._reap()
        if not self._exited.done():
            self._poll_handle = self._loop.call_later(0.01, self._poll)

    def cpu_seconds(self) -> float:
        """CPU time used so far by the running process (0 once it has exited)."""
        if self._exited.done():
            return 0.0
        return cpu_seconds(self.pid)

    def kill(self) -> None:
        """Kill the process and its process group (its own session).

        Only while the process is not reaped: after that its pid, and so its group id, may
        belong to someone else (what it left behind is :func:`kill_marked`'s business).
        """
        if self._exited.done():
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    async def wait(self) -> Exit:
        result = await self._exited
        if not self._pipes_closed.done():
            await asyncio.wait((self._pipes_closed,), timeout=PIPE_GRACE)
            for pipe in (self._popen.stdout, self._popen.stderr):
                if pipe is not None:
                    self._close_pipe(pipe)
        return result


def _stat_fields(pid: int) -> list[bytes]:
    """``/proc/<pid>/stat`` after the command name (field 3, the state, comes first)."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        return stat.read().rsplit(b")", 1)[1].split()


def cpu_seconds(pid: int, children: bool = True) -> float:
    """CPU time (user + system) of a live process, with its reaped children's by default;
    0 when it cannot be read."""
    try:
        fields = _stat_fields(pid)
        ticks = int(fields[11]) + int(fields[12])
        if children:
            ticks += int(fields[13]) + int(fields[14])
    except (OSError, IndexError, ValueError):
        return 0.0
    return ticks / os.sysconf("SC_CLK_TCK")


def kill_marked(markers: Collection[str], workdir: Path, rounds: int = 20) -> int:
    """Kill every process that belongs to one of the activities ``markers`` (their ids);
    returns how many were killed. Blocking: run it in a thread.

    A process belongs to an activity when its environment carries the activity's mark, or
    its working directory is inside ``workdir/<activity id>``. The scan repeats until it
    finds nothing (a process may fork while it runs), at most ``rounds`` times. Each process
    is opened as a pidfd before it is examined and signalled through it, so a pid reused in
    between is never hit.
    """
    wanted = set(markers)
    if not wanted:
        return 0
    prefix = str(workdir.resolve()) + os.sep
    killed = 0
    for _ in range(rounds):
        found = 0
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == os.getpid():
                continue
            found += _kill_if_marked(int(name), wanted, prefix)
        killed += found
        if not found:
            break
        time.sleep(0.01)
    return killed


def _kill_if_marked(pid: int, wanted: set[str], prefix: str) -> int:
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return 0
    try:
        if _owner(pid, prefix) not in wanted:
            return 0
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        return 1
    except OSError:
        return 0
    finally:
        os.close(pidfd)


def _owner(pid: int, prefix: str) -> str | None:
    """The activity id a process is marked with (environment, else working directory)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as environ:
            data = environ.read()
    except OSError:
        return None  # another user's process, or gone
    start = data.find(_MARKER)
    while start > 0 and data[start - 1] != 0:  # inside another variable's value
        start = data.find(_MARKER, start + 1)
    if start >= 0:
        end = data.find(b"\0", start)
        return data[start + len(_MARKER) : end if end >= 0 else None].decode(errors="replace")
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None
    if cwd.startswith(prefix):
        return cwd[len(prefix) :].split(os.sep, 1)[0]
    return None
