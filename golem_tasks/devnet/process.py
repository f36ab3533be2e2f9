"""Run one local process without a thread: pipes and a pidfd watched by the event loop.

asyncio's subprocess support waits for children with a helper thread per process and
cannot report CPU time per child. Here the child's exit is noticed through a pidfd
(Linux >= 5.3) and reaped with ``wait4``, which also yields its rusage: the activity's
``golem.usage.cpu_sec`` counter is the CPU time its processes really used.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

READ_CHUNK = 65536
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
        popen = await asyncio.get_running_loop().run_in_executor(executor, spawn)
        return cls(popen, on_stdout, on_stderr)

    def _read(self, pipe, sink: Callable[[bytes], None]) -> None:
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

    def _close_pipe(self, pipe) -> None:
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
        try:
            with open(f"/proc/{self.pid}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
            ticks = int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
            return ticks / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return 0.0

    def kill(self) -> None:
        """Kill the process and everything it started (its own session)."""
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
