"""Durable timers: deadlines and retry delays derived from run state.

Timers are not stored anywhere of their own: each is implied by a run's
state (a running attempt's deadline, a retry's due time, the run deadline),
and the state is rebuilt from the history stream, so every timer survives an
engine restart, including timers already due (SPEC Part A 8). When a timer
fires, the engine publishes its event to history; the pure core decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from collections.abc import Awaitable, Callable

from dagnats.dag import Timer

logger = logging.getLogger(__name__)

FireCallback = Callable[[str, Timer], Awaitable[None]]


class TimerQueue:
    """A min-heap of timers per run; stale entries are dropped lazily."""

    def __init__(self, on_fire: FireCallback) -> None:
        self._on_fire = on_fire
        self._heap: list[tuple[float, str, str]] = []
        self._live: dict[str, dict[str, Timer]] = {}
        self._wakeup = asyncio.Event()

    def set_run_timers(self, run_id: str, timers: list[Timer]) -> None:
        """Replace the timers of ``run_id`` with ``timers``."""
        current = {t.key: t for t in timers}
        previous = self._live.get(run_id, {})
        if current.keys() == previous.keys():
            return
        if current:
            self._live[run_id] = current
        else:
            self._live.pop(run_id, None)
        earliest = self._heap[0][0] if self._heap else float("inf")
        for key, timer in current.items():
            if key not in previous:
                heapq.heappush(self._heap, (timer.fire_at, run_id, key))
                if timer.fire_at < earliest:
                    self._wakeup.set()

    def __len__(self) -> int:
        return sum(len(timers) for timers in self._live.values())

    async def run(self) -> None:
        """Fire timers as they fall due, until cancelled."""
        while True:
            timeout = self._seconds_to_next()
            self._wakeup.clear()
            if timeout > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._wakeup.wait(), timeout=min(timeout, 60)
                    )
                continue
            fire_at, run_id, key = heapq.heappop(self._heap)
            timer = self._live.get(run_id, {}).get(key)
            if timer is None or timer.fire_at != fire_at:
                continue
            try:
                await self._on_fire(run_id, timer)
            except Exception:
                # Supervision boundary: a failed publish is retried by
                # pushing the timer back; it fires again a second later.
                logger.exception("timer publish failed run_id=%s key=%s", run_id, key)
                retry_at = time.time() + 1.0
                heapq.heappush(self._heap, (retry_at, run_id, key))
                self._live[run_id][key] = Timer(retry_at, timer.event)

    def _seconds_to_next(self) -> float:
        while self._heap:
            fire_at, run_id, key = self._heap[0]
            timer = self._live.get(run_id, {}).get(key)
            if timer is not None and timer.fire_at == fire_at:
                return fire_at - time.time()
            heapq.heappop(self._heap)
        return 60.0
