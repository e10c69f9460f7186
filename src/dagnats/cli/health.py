"""A minimal HTTP endpoint for ``GET /health`` while the REST API is not built."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from dagnats.errors import ConfigurationError

logger = logging.getLogger(__name__)

_READ_TIMEOUT_S = 5.0
_CLOSE_TIMEOUT_S = 2.0


class HealthServer:
    """Answers ``GET /health`` with 200 ``ok`` or 503, anything else with 404."""

    def __init__(self, is_healthy: Callable[[], bool], host: str, port: int) -> None:
        self._is_healthy = is_healthy
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        """The ``http://`` base URL (with the chosen port once started)."""
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        """Listen; with port 0 the chosen port is in ``self.port`` afterwards.

        Raises:
            ConfigurationError: the address cannot be bound (in use, say).
        """
        try:
            self._server = await asyncio.start_server(self._serve, self.host, self.port)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot listen for /health on {self.host}:{self.port} "
                f"({exc.strerror}); pass another --http-port, or 0 for a free one"
            ) from exc
        self.port = int(self._server.sockets[0].getsockname()[1])
        logger.info("health endpoint listening url=%s/health", self.url)

    async def stop(self) -> None:
        """Stop listening (bounded: open connections are not waited for long)."""
        if self._server is None:
            return
        self._server.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), _CLOSE_TIMEOUT_S)
        self._server = None

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), _READ_TIMEOUT_S)
            words = request.decode("latin-1").split()
            status, body = self._response(words)
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            is_head = bool(words) and words[0] == "HEAD"
            writer.write(head.encode() + (b"" if is_head else body))
            await writer.drain()
        except (OSError, TimeoutError):
            pass  # the client went away; nothing to answer
        finally:
            writer.close()

    def _response(self, request_line: list[str]) -> tuple[str, bytes]:
        """Status line and body for a request line split into words."""
        if len(request_line) < 2 or request_line[0] not in ("GET", "HEAD"):
            return "405 Method Not Allowed", b"method not allowed\n"
        if request_line[1] != "/health":
            return "404 Not Found", b"not found\n"
        if self._is_healthy():
            return "200 OK", b"ok\n"
        return "503 Service Unavailable", b"nats unreachable\n"
