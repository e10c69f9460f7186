"""What a part measures against: a dagnats deployment, or a bare server for raw.

In a dagnats deployment the engine runs as ``dagnats serve --nats-url`` in
its own process, as in production (workers are started by each part, also
as processes); the client lives in the runner.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import nats

from bench.model import Session
from bench.processes import Child, fresh_server
from dagnats import Client


@dataclass(slots=True)
class Stack:
    """What a dagnats part works with."""

    url: str
    client: Client
    engine: Child | None

    @property
    def js(self) -> Any:
        """JetStream on the client's connection."""
        return self.client.nc.jetstream()


@contextlib.asynccontextmanager
async def dagnats_stack(
    session: Session, *, engine: bool = True
) -> AsyncIterator[Stack]:
    """A fresh server, the engine process (unless not wanted) and a client."""
    async with fresh_server() as server, Client(server.url) as client:
        if not engine:
            yield Stack(server.url, client, None)
            return
        async with session.children.engine(server.url) as child:
            yield Stack(server.url, client, child)


@contextlib.asynccontextmanager
async def raw_server() -> AsyncIterator[tuple[str, Any]]:
    """A fresh server and a plain nats-py connection: ``(url, nc)``."""
    async with fresh_server() as server:
        nc = await nats.connect(server.url, name="bench-raw-client")
        try:
            yield server.url, nc
        finally:
            await nc.close()
