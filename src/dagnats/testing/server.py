"""A fresh embedded nats-server for tests, on a free port with temp storage."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from dagnats.natsio import EmbeddedServer, connect, ensure_resources


@contextlib.asynccontextmanager
async def nats_server(data_dir: Path) -> AsyncIterator[EmbeddedServer]:
    """A started server with every dagnats resource created."""
    async with EmbeddedServer(data_dir, port=0) as server:
        nc = await connect(server.url, name="dagnats-test-setup")
        try:
            await ensure_resources(nc.jetstream())
        finally:
            await nc.close()
        yield server
