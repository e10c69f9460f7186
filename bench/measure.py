"""Waiting for a state and turning timings into numbers: every wait is bounded."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from nats.aio.client import Client as NatsClient
from nats.js.errors import NotFoundError

_COMPLETED = b'"type":"workflow.completed"'
_FAILED = (b'"type":"workflow.failed"', b'"type":"workflow.cancelled"')


class RunsFailedError(RuntimeError):
    """A benchmark run ended failed or cancelled: the numbers would lie."""


async def until(
    check: Callable[[], Awaitable[bool]],
    timeout_s: float,
    what: str,
    every_s: float = 0.01,
) -> None:
    """Poll ``check`` until it is true.

    Raises:
        TimeoutError: not true within ``timeout_s`` (the message names ``what``).
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(every_s)
    raise TimeoutError(f"{what}: not reached within {timeout_s:g} s")


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    index = round(fraction * (len(ordered) - 1))
    return ordered[min(len(ordered) - 1, max(0, index))]


def median(values: list[float]) -> float:
    """The median of ``values`` (at least one)."""
    return statistics.median(values)


def latency_values(times_ms: list[float]) -> dict[str, float]:
    """p50 and p99 of round-trip times in milliseconds."""
    return {"p50_ms": percentile(times_ms, 0.5), "p99_ms": percentile(times_ms, 0.99)}


async def timed_ms(work: Awaitable[Any]) -> float:
    """How long awaiting ``work`` took, in milliseconds."""
    started = time.perf_counter()
    await work
    return (time.perf_counter() - started) * 1000


async def consumer_info(js: Any, stream: str, consumer: str) -> Any | None:
    """The consumer's info, or None while it does not exist."""
    try:
        return await js.consumer_info(stream, consumer)
    except NotFoundError:
        return None


async def first_delivery(
    js: Any, stream: str, consumer: str, timeout_s: float
) -> float:
    """``perf_counter()`` when the consumer first shows a delivered message."""

    async def delivered() -> bool:
        info = await consumer_info(js, stream, consumer)
        return info is not None and info.delivered.consumer_seq > 0

    await until(delivered, timeout_s, f"first delivery on {stream}/{consumer}", 0.005)
    return time.perf_counter()


async def consumer_idle(js: Any, stream: str, consumer: str, timeout_s: float) -> None:
    """Wait until the consumer has nothing pending and nothing unacknowledged."""

    async def idle() -> bool:
        info = await consumer_info(js, stream, consumer)
        return info is not None and info.num_pending == 0 and info.num_ack_pending == 0

    await until(idle, timeout_s, f"{stream}/{consumer} caught up", 0.02)


async def stream_holds(js: Any, stream: str, count: int, timeout_s: float) -> None:
    """Wait until ``stream`` stores at least ``count`` messages."""

    async def enough() -> bool:
        return bool((await js.stream_info(stream)).state.messages >= count)

    await until(enough, timeout_s, f"{count} messages in {stream}", 0.05)


class Completions:
    """Counts runs that end, from their events on a core subscription to history.

    The event type is found in the raw JSON (no decoding), so counting
    100,000 events costs the runner little.
    """

    def __init__(self) -> None:
        self.completed = 0
        self.failed = 0
        self._target = 0
        self._changed = asyncio.Event()
        self._sub: Any = None

    async def watch(self, nc: NatsClient) -> Completions:
        """Start counting (before the runs that are counted start)."""
        self._sub = await nc.subscribe("history.>", cb=self._on_event)
        return self

    async def stop(self) -> None:
        """Stop counting."""
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None

    async def _on_event(self, msg: Any) -> None:
        data = msg.data
        if _COMPLETED in data:
            self.completed += 1
        elif any(kind in data for kind in _FAILED):
            self.failed += 1
        else:
            return
        if self.completed + self.failed >= self._target:
            self._changed.set()

    async def wait(self, count: int, timeout_s: float) -> float:
        """``perf_counter()`` once ``count`` runs have completed in total.

        Raises:
            RunsFailedError: a run failed or was cancelled.
            TimeoutError: fewer than ``count`` completed within ``timeout_s``.
        """
        self._target = count
        try:
            await asyncio.wait_for(self._reached(count), timeout_s)
        except TimeoutError:
            raise TimeoutError(
                f"{self.completed} of {count} runs completed in {timeout_s:g} s"
            ) from None
        if self.failed:
            raise RunsFailedError(f"{self.failed} runs failed or were cancelled")
        return time.perf_counter()

    async def _reached(self, count: int) -> None:
        while self.completed + self.failed < count:
            self._changed.clear()
            await self._changed.wait()
