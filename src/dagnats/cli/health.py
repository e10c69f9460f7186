"""A minimal HTTP endpoint for ``GET /health`` while the REST API is not built."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable


class HealthServer:
    """Answers ``GET /health`` with 200 ``ok`` or 503, anything else with 404."""

    def __init__(self, is_healthy: Callable[[], bool], host: str, port: int) -> None:
        self._is_healthy = is_healthy
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Listen; with port 0 the chosen port is in ``self.port`` afterwards."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5.0)
            parts = request.decode("latin-1").split()
            if (
                len(parts) >= 2
                and parts[0] in ("GET", "HEAD")
                and parts[1] == "/health"
            ):
                ok = self._is_healthy()
                status, body = (
                    ("200 OK", b"ok\n")
                    if ok
                    else ("503 Service Unavailable", b"nats unreachable\n")
                )
            else:
                status, body = "404 Not Found", b"not found\n"
            head = f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            writer.write(head.encode() + body)
            await writer.drain()
        except (OSError, TimeoutError, UnicodeDecodeError):
            pass
        finally:
            writer.close()
