"""Connecting: URL resolution and a fast, named failure when NATS is down."""

from __future__ import annotations

import logging
import socket
import time

import pytest

from dagnats.errors import NatsUnavailableError
from dagnats.natsio import DEFAULT_URL, EmbeddedServer, connect, free_port, resolve_url
from dagnats.natsio import connection as connection_module
from dagnats.testing import eventually


def test_resolve_url_without_argument_uses_nats_url(monkeypatch):
    monkeypatch.setenv("NATS_URL", "nats://127.0.0.1:4999")

    assert resolve_url(None) == "nats://127.0.0.1:4999"


def test_resolve_url_prefers_the_argument_over_nats_url(monkeypatch):
    monkeypatch.setenv("NATS_URL", "nats://127.0.0.1:4999")

    assert resolve_url("nats://127.0.0.1:5000") == "nats://127.0.0.1:5000"


def test_resolve_url_falls_back_to_the_default(monkeypatch):
    monkeypatch.delenv("NATS_URL", raising=False)

    assert resolve_url(None) == DEFAULT_URL == "nats://127.0.0.1:4222"


async def test_connect_to_a_closed_port_raises_naming_the_url_within_seconds():
    url = f"nats://127.0.0.1:{free_port()}"
    started = time.monotonic()

    with pytest.raises(NatsUnavailableError) as raised:
        await connect(url)

    assert time.monotonic() - started < 5.0
    assert raised.value.url == url
    assert url in str(raised.value)


async def test_connect_without_url_uses_nats_url(nats_url, monkeypatch):
    monkeypatch.setenv("NATS_URL", nats_url)

    nc = await connect(None)
    try:
        connected = nc.connected_url
    finally:
        await nc.close()

    assert connected is not None
    assert f"{connected.hostname}:{connected.port}" == nats_url.removeprefix("nats://")


async def test_connect_to_a_port_that_never_answers_gives_up_in_time():
    # The kernel accepts into the backlog, but no INFO ever comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"nats://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()

        with pytest.raises(NatsUnavailableError) as raised:
            await connect(url, connect_timeout_s=1.0)

    assert time.monotonic() - started < 3.0
    assert url in str(raised.value)


def outage_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The WARNING records the connection module logged."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == connection_module.__name__ and r.levelno >= logging.WARNING
    ]


def failed_attempts(caplog: pytest.LogCaptureFixture) -> int:
    """How many reconnect attempts failed so far."""
    return sum("attempt failed" in r.getMessage() for r in caplog.records)


async def test_after_connecting_the_client_reconnects_past_the_first_bound(
    tmp_path, caplog
):
    server = EmbeddedServer(tmp_path, port=0)
    await server.start()
    nc = await connect(server.url)
    try:
        await server.stop()
        # More failures than the first connect allows (two): still trying.
        await eventually(lambda: failed_attempts(caplog) >= 3, timeout_s=10)
        assert nc.is_reconnecting

        await server.start()
        await eventually(lambda: nc.is_connected, timeout_s=10)
        await nc.flush(timeout=2)
    finally:
        await nc.close()
        await server.stop()

    assert outage_warnings(caplog) == [
        f"nats disconnected, reconnecting url={server.url}"
    ]


async def test_a_deliberate_close_is_not_logged_as_an_outage(nats_url, caplog):
    nc = await connect(nats_url)

    await nc.close()

    assert outage_warnings(caplog) == []
