"""Slots are handed out fairly: an idle fetcher cannot keep them all."""

from __future__ import annotations

import asyncio

from dagnats.worker.slots import Slots


async def test_a_slot_given_back_goes_to_the_longest_waiter():
    slots = Slots(1)
    assert await slots.take(1) == 1
    waiting = asyncio.create_task(slots.take(1))
    await asyncio.sleep(0)
    slots.give_back(1)
    # The one that gave it back asks again at once: it must queue behind.
    again = asyncio.create_task(slots.take(1))
    assert await asyncio.wait_for(waiting, 1) == 1
    assert not again.done()
    slots.give_back(1)
    assert await asyncio.wait_for(again, 1) == 1


async def test_take_gets_every_free_slot_up_to_most():
    slots = Slots(5)
    assert await slots.take(3) == 3
    assert await slots.take(10) == 2
    assert slots.free == 0


async def test_a_cancelled_waiter_does_not_lose_a_slot():
    slots = Slots(1)
    await slots.take(1)
    first = asyncio.create_task(slots.take(1))
    second = asyncio.create_task(slots.take(1))
    await asyncio.sleep(0)
    first.cancel()
    slots.give_back(1)
    assert await asyncio.wait_for(second, 1) == 1


async def test_a_woken_waiter_never_gets_zero_slots():
    slots = Slots(1)
    await slots.take(1)
    waiter = asyncio.create_task(slots.take(4))
    await asyncio.sleep(0)
    slots.give_back(1)  # wakes the waiter ...
    assert await slots.take(1) == 1  # ... but this caller runs first and takes it
    assert not waiter.done()
    slots.give_back(1)
    assert await asyncio.wait_for(waiter, 1) == 1
