"""A test harness: engine, client and workers on one NATS server."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from dagnats.client import Client
from dagnats.dag import Limits
from dagnats.engine import Engine
from dagnats.natsio import connect
from dagnats.protocol import Event
from dagnats.worker import Worker


async def eventually(
    check: Callable[[], Awaitable[Any] | Any],
    timeout_s: float = 10.0,
    interval_s: float = 0.02,
) -> Any:
    """Poll ``check`` until it is truthy; AssertionError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval_s)
    raise AssertionError(
        f"condition not met within {timeout_s} s (last value {last!r})"
    )


@contextlib.asynccontextmanager
async def running_engine(
    url: str, limits: Limits | None = None
) -> AsyncIterator[Engine]:
    """An engine on its own connection, stopped at exit."""
    nc = await connect(url, name="dagnats-test-engine")
    engine = Engine(nc, limits=limits)
    await engine.start()
    try:
        yield engine
    finally:
        await engine.stop()
        await nc.close()


@contextlib.asynccontextmanager
async def running_worker(worker: Worker) -> AsyncIterator[Worker]:
    """``worker`` started, and stopped at exit."""
    await worker.start()
    try:
        yield worker
    finally:
        await worker.stop()


@contextlib.asynccontextmanager
async def connected_client(url: str) -> AsyncIterator[Client]:
    """A connected client, closed at exit."""
    async with Client(url) as client:
        yield client


async def event_kinds(client: Client, run_id: str) -> list[str]:
    """The ``type`` of every event of a run, in order."""
    events: list[Event] = await client.events(run_id)
    return [e.type.value for e in events]
