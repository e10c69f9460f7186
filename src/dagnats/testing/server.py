"""A fresh embedded nats-server for tests: free port, its own storage, resources made.

Plain async helpers with no pytest import, so scripts and other test runners
can use them too; ``tests/conftest.py`` wraps them in fixtures.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from dagnats.natsio import EmbeddedServer, connect, ensure_resources, free_port

__all__ = ["free_port", "nats_server"]


@contextlib.asynccontextmanager
async def nats_server(data_dir: Path) -> AsyncIterator[EmbeddedServer]:
    """A started server on a free port storing in ``data_dir``, every stream made.

    The server is stopped (and its process reaped) at exit; ``data_dir`` is
    left for the caller to remove.
    """
    async with EmbeddedServer(data_dir, port=0) as server:
        nc = await connect(server.url, name="dagnats-test-setup")
        try:
            await ensure_resources(nc.jetstream())
        finally:
            await nc.close()
        yield server
