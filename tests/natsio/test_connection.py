"""Connecting: URL resolution and a fast, named failure when NATS is down."""

from __future__ import annotations

import time

import pytest

from dagnats.errors import NatsUnavailableError
from dagnats.natsio import DEFAULT_URL, connect, free_port, resolve_url


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
