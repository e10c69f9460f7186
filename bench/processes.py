"""Processes the benchmark starts: a fresh nats-server, engines, workers, raw consumers.

Every child is stopped by its own pid (SIGTERM, then SIGKILL), and on Linux
dies with the runner (``PR_SET_PDEATHSIG``), so an interrupted run leaves
nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from dagnats.natsio import EmbeddedServer

ROOT = Path(__file__).resolve().parent.parent

_READY_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 20.0
_POLL_S = 0.02
_PR_SET_PDEATHSIG = 1


class ChildFailedError(RuntimeError):
    """A child process exited before it was ready."""


@contextlib.asynccontextmanager
async def fresh_server() -> AsyncIterator[EmbeddedServer]:
    """A new nats-server on a free port with empty file storage."""
    with tempfile.TemporaryDirectory(prefix="dagnats-bench-") as data_dir:
        async with EmbeddedServer(Path(data_dir), port=0) as server:
            yield server


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return None


# Loaded here, not in the forked child: the runner has threads, and a child
# must not take the dynamic loader's lock between fork and exec.
_LIBC = _libc() if sys.platform == "linux" else None


def _die_with_parent() -> None:
    """Runs in the child before exec: the kernel kills it when the runner dies."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class Child:
    """One Python child process, its output in ``log_path``."""

    def __init__(self, role: str, argv: list[str], url: str, log_path: Path) -> None:
        self.role = role
        self.log_path = log_path
        python_path = os.pathsep.join(
            p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
        )
        env = {
            **os.environ,
            "NATS_URL": url,
            "PYTHONPATH": python_path,
            "PYTHONUNBUFFERED": "1",
        }
        with log_path.open("ab") as out:
            self.popen = subprocess.Popen(
                [sys.executable, *argv],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent if _LIBC is not None else None,
            )

    @property
    def pid(self) -> int:
        """Its process id."""
        return self.popen.pid

    def cpu_seconds(self) -> float:
        """User + system CPU time used so far (``/proc/<pid>/stat``)."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mib(self) -> float:
        """Peak resident memory so far (``VmHWM``) in MiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise ChildFailedError(f"{self.role} pid={self.pid} has no VmHWM")

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of its output."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no output)"
        return "\n".join(text.splitlines()[-lines:])

    async def ready(self, marker: str, timeout_s: float = _READY_TIMEOUT_S) -> None:
        """Wait until its output contains ``marker``.

        Raises:
            ChildFailedError: it exited first.
            TimeoutError: ``marker`` did not appear within ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if marker in self.log_path.read_text(errors="replace"):
                return
            if self.popen.poll() is not None:
                raise ChildFailedError(
                    f"{self.role} exited with {self.popen.returncode}:\n"
                    f"{self.log_tail()}"
                )
            await asyncio.sleep(_POLL_S)
        raise TimeoutError(f"{self.role} not ready within {timeout_s:g} s")

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL if it is still running after 20 s."""
        if self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(self.popen.wait, _STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            await asyncio.to_thread(self.popen.wait, _STOP_TIMEOUT_S)


class Children:
    """Starts the children of the current part and remembers them for diagnosis."""

    def __init__(self, logs: Path, progress: Callable[[str], None]) -> None:
        self._logs = logs
        self._progress = progress
        self._count = 0
        self.current: list[Child] = []

    def forget(self) -> None:
        """A new part begins."""
        self.current = []

    @contextlib.asynccontextmanager
    async def running(
        self, role: str, argv: list[str], url: str, marker: str
    ) -> AsyncIterator[Child]:
        """``argv`` run by this Python until the block ends; ready when ``marker``."""
        self._count += 1
        child = Child(role, argv, url, self._logs / f"{self._count:03d}-{role}.log")
        self.current.append(child)
        self._progress(f"  started {role} pid={child.pid}")
        try:
            await child.ready(marker)
            yield child
        finally:
            await child.stop()

    def engine(self, url: str) -> contextlib.AbstractAsyncContextManager[Child]:
        """The engine alone against ``url``: ``dagnats serve --nats-url``."""
        argv = ["-m", "dagnats", "serve", "--nats-url", url, "--http-port", "0"]
        return self.running("engine", argv, url, "dagnats serving")

    def worker(
        self, target: str, url: str, *options: str
    ) -> contextlib.AbstractAsyncContextManager[Child]:
        """``dagnats worker bench.workers:NAME`` with extra CLI ``options``."""
        argv = ["-m", "dagnats", "worker", target, "--nats-url", url, *options]
        return self.running("worker", argv, url, "worker started")

    def raw(self, mode: str, url: str) -> contextlib.AbstractAsyncContextManager[Child]:
        """The hand-written consumer process of ``bench.raw`` in ``mode``."""
        return self.running(f"raw-{mode}", ["-m", "bench.raw", mode, url], url, "ready")
