"""Workers the benchmarks run in separate processes."""

from __future__ import annotations

import asyncio

from dagnats import TaskContext, Worker

noop = Worker(max_in_flight=64)


@noop.task("bench-noop")
async def bench_noop(ctx: TaskContext) -> int:
    """Do nothing: measures dagnats' own cost per task."""
    return 1


@noop.task("bench-pass")
async def bench_pass(ctx: TaskContext) -> object:
    """Pass the input on (three-step chains)."""
    return ctx.input


holding = Worker(max_in_flight=1000, ack_wait=30.0)


@holding.task("bench-hold")
async def bench_hold(ctx: TaskContext) -> int:
    """Stay in flight (heartbeat cost): 35 s, then finish."""
    await asyncio.sleep(35)
    return 1
