"""Free execution slots of a worker, handed out fairly in batches for one fetch."""

from __future__ import annotations

import asyncio
from collections import deque


class Slots:
    """A counter of free slots with a first-come, first-served queue.

    A fetcher that gives a slot back and asks again goes behind those
    already waiting, so one idle task type cannot keep every slot to itself.
    """

    def __init__(self, size: int) -> None:
        self._free = size
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def free(self) -> int:
        """Slots not taken right now."""
        return self._free

    async def take(self, most: int) -> int:
        """Wait for a free slot (in arrival order), then take 1 to ``most``."""
        if self._free <= 0 or self._waiters:
            await self._turn(front=False)
        while self._free <= 0:
            # Woken, but a caller that did not queue took the slot first.
            await self._turn(front=True)
        taken = min(self._free, max(most, 1))
        self._free -= taken
        self._wake_next()
        return taken

    async def _turn(self, *, front: bool) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if front:
            self._waiters.appendleft(waiter)
        else:
            self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            elif waiter.done() and not waiter.cancelled():
                self._wake_next()  # pass the turn we were given on
            raise

    def give_back(self, count: int = 1) -> None:
        """Return ``count`` slots and wake the longest waiter."""
        self._free += count
        self._wake_next()

    def _wake_next(self) -> None:
        while self._free > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
