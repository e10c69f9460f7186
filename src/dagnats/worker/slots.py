"""Free execution slots of a worker, taken in batches for one fetch."""

from __future__ import annotations

import asyncio


class Slots:
    """A counter of free slots: wait for one, then take as many as are free."""

    def __init__(self, size: int) -> None:
        self._free = size
        self._changed = asyncio.Condition()

    @property
    def free(self) -> int:
        """Slots not taken right now."""
        return self._free

    async def take(self, most: int) -> int:
        """Wait until a slot is free, then take up to ``most``; returns how many."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._free > 0)
            taken = min(self._free, most)
            self._free -= taken
            return taken

    def give_back(self, count: int = 1) -> None:
        """Return ``count`` slots (callable from the event loop only)."""
        self._free += count
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()
