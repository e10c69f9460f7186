"""Detect handler code that blocks the event loop (and so starves heartbeats)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

_TICK_S = 0.1


class LoopWatchdog:
    """A thread that notices when the event loop stops ticking.

    An async handler that blocks (a CPU loop, ``time.sleep``, blocking I/O)
    stops every other coroutine, automatic heartbeats included. The watchdog
    logs a WARNING naming the async handlers running at the time, once per
    stall; sync handlers run in threads and never trigger it.
    """

    def __init__(self, threshold_s: float, running: Callable[[], list[str]]) -> None:
        self._threshold_s = threshold_s
        self._running = running
        self._last_tick = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._handle: asyncio.TimerHandle | None = None
        self.stalls = 0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start ticking on ``loop`` and watching from a daemon thread."""
        self._schedule(loop)
        self._thread = threading.Thread(
            target=self._watch, name="dagnats-watchdog", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop watching."""
        self._stop.set()
        if self._handle is not None:
            self._handle.cancel()

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        self._last_tick = time.monotonic()
        if not self._stop.is_set():
            self._handle = loop.call_later(_TICK_S, self._schedule, loop)

    def _watch(self) -> None:
        reported = False
        while not self._stop.wait(_TICK_S):
            stalled_s = time.monotonic() - self._last_tick
            if stalled_s < self._threshold_s:
                reported = False
                continue
            if not reported:
                reported = True
                self.stalls += 1
                logger.warning(
                    "event loop blocked seconds=%.1f running=%s; a handler on the "
                    "loop is blocking (use a sync handler or asyncio.to_thread)",
                    stalled_s,
                    ",".join(self._running()) or "-",
                )
