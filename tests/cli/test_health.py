"""``GET /health``: 200 while NATS is connected, 503 while not, 404 elsewhere."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from dagnats.cli.health import HealthServer
from dagnats.errors import ConfigurationError


async def request(server: HealthServer, line: str) -> tuple[str, bytes]:
    """Status line and body of one raw HTTP request."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(f"{line}\r\nHost: test\r\n\r\n".encode())
    await writer.drain()
    response = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode(), body


@pytest.fixture
async def health() -> AsyncIterator[tuple[HealthServer, list[bool]]]:
    connected = [True]
    server = HealthServer(lambda: connected[0], "127.0.0.1", 0)
    await server.start()
    try:
        yield server, connected
    finally:
        await server.stop()


async def test_health_is_200_while_connected_and_503_while_not(health):
    server, connected = health

    up = await request(server, "GET /health HTTP/1.1")
    connected[0] = False
    down = await request(server, "GET /health HTTP/1.1")

    assert up == ("HTTP/1.1 200 OK", b"ok\n")
    assert down == ("HTTP/1.1 503 Service Unavailable", b"nats unreachable\n")


async def test_other_paths_are_404_and_other_methods_405(health):
    server, _ = health

    missing = await request(server, "GET /nope HTTP/1.1")
    posted = await request(server, "POST /health HTTP/1.1")

    assert missing[0] == "HTTP/1.1 404 Not Found"
    assert posted[0] == "HTTP/1.1 405 Method Not Allowed"


async def test_head_gets_the_status_without_a_body(health):
    server, _ = health

    assert await request(server, "HEAD /health HTTP/1.1") == ("HTTP/1.1 200 OK", b"")


async def test_port_in_use_is_a_configuration_error_naming_it(health):
    server, _ = health
    second = HealthServer(lambda: True, "127.0.0.1", server.port)

    with pytest.raises(ConfigurationError, match=f"127.0.0.1:{server.port}"):
        await second.start()
