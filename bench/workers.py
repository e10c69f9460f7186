"""The dagnats workers the benchmarks run, each in its own process.

``python -m dagnats worker bench.workers:noop_worker`` from the repo root; the
runner sets ``--max-in-flight``, ``--ack-wait`` and ``--drain-timeout``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from dagnats import TaskContext, Worker

HOLD_S = 600.0  # longer than any heartbeat window; the worker is stopped first

noop_worker = Worker()
chain_worker = Worker()
hold_worker = Worker()


@noop_worker.task("bench-noop")
async def noop(ctx: TaskContext) -> int:
    """Do nothing: what is measured is dagnats' own cost per task."""
    return 1


@chain_worker.task("bench-pass")
async def pass_on(ctx: TaskContext) -> Any:
    """Return the input, so each step of a chain hands its value on."""
    return ctx.input


@hold_worker.task("bench-hold")
async def hold(ctx: TaskContext) -> int:
    """Stay in flight (automatic heartbeats keep the lease) until stopped."""
    await asyncio.sleep(HOLD_S)
    return 1
