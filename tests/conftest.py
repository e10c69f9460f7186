"""Shared fixtures: a real nats-server per test (free port, temp storage)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from nats.aio.client import Client as NatsClient

from dagnats.natsio import EmbeddedServer, connect
from dagnats.testing import nats_server as start_nats_server


# Failing tests show dagnats' own logs, DEBUG included.
@pytest.fixture(autouse=True)
def _debug_logging(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="dagnats")


# A fresh JetStream server for this test only, every dagnats stream created.
@pytest.fixture
async def nats_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[EmbeddedServer]:
    async with start_nats_server(tmp_path_factory.mktemp("nats")) as server:
        yield server


# Its URL.
@pytest.fixture
def nats_url(nats_server: EmbeddedServer) -> str:
    return nats_server.url


# A raw NATS connection to it, closed after the test.
@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[NatsClient]:
    conn = await connect(nats_url, name="dagnats-test")
    yield conn
    await conn.close()
