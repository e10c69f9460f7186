"""Workflow-run scenarios: one-step latency, a three-step chain, fan-out."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench import raw
from bench.measure import Completions, latency_values, timed_ms
from bench.model import (
    Part,
    Row,
    Scenario,
    Session,
    Values,
    at_least_raw,
    at_most_raw,
)
from bench.stack import Stack, dagnats_stack, raw_server
from bench.workflows import ONE_STEP, THREE_STEPS

WARM_UP = 5
CHAIN_IN_FLIGHT = 256  # worker slots for the concurrent chains
_RUN_TIMEOUT_S = 30.0


def latency_scenario(quick: bool) -> Scenario:
    """An idle system: start a one-step run and wait for its result, N in a row."""
    n = 50 if quick else 200

    async def dagnats_part(session: Session) -> Values:
        return await _dagnats_latency(session, n)

    async def raw_part(session: Session) -> Values:
        return await _raw_latency(session, n)

    label = f"one-step run latency ({n} in a row)"
    return Scenario(
        name="latency",
        parts=(Part("dagnats", dagnats_part, 180.0), Part("raw", raw_part, 120.0)),
        rows=(
            Row(
                f"{label} p50",
                "ms",
                "dagnats.p50_ms",
                "raw.p50_ms",
                target=at_most_raw(2.5),
            ),
            Row(f"{label} p99", "ms", "dagnats.p99_ms", "raw.p99_ms"),
        ),
        notes=(
            "latency: Client.run (start, then wait for the result) against an "
            "engine process and a worker process; raw: publish a task with a "
            "Reply-To header to a work-queue stream, a consumer process publishes "
            "the result there and acks.",
        ),
    )


async def _dagnats_latency(session: Session, n: int) -> Values:
    async with dagnats_stack(session) as stack:
        worker = session.children.worker("bench.workers:noop_worker", stack.url)
        async with worker:
            await stack.client.register_workflow(ONE_STEP)
            times = await _sequential_runs(stack, ONE_STEP.name, n)
    return latency_values(times)


async def _sequential_runs(stack: Stack, workflow: str, n: int) -> list[float]:
    """Milliseconds of ``n`` runs one after another (after a few to warm up)."""
    times = []
    for i in range(WARM_UP + n):
        run = stack.client.run(workflow, {"n": i}, timeout=_RUN_TIMEOUT_S)
        elapsed = await timed_ms(run)
        if i >= WARM_UP:
            times.append(elapsed)
    return times


async def _raw_latency(session: Session, n: int) -> Values:
    async with raw_server() as (url, nc):
        await raw.ensure_stream(nc.jetstream())
        async with session.children.raw("reply", url):
            times = await _raw_round_trips(nc, raw.REPLY_SUBJECT, n)
    return latency_values(times)


async def _raw_round_trips(nc: Any, subject: str, n: int) -> list[float]:
    """Milliseconds from publishing a task to its reply, ``n`` one after another."""
    js = nc.jetstream()

    async def round_trip(i: int) -> None:
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox, max_msgs=1)
        headers = {raw.REPLY_HEADER: inbox}
        await js.publish(subject, raw.task_body(i), headers=headers)
        await sub.next_msg(timeout=_RUN_TIMEOUT_S)

    times = []
    for i in range(WARM_UP + n):
        elapsed = await timed_ms(round_trip(i))
        if i >= WARM_UP:
            times.append(elapsed)
    return times


def three_steps_scenario(quick: bool) -> Scenario:
    """``a → b → c`` passing a small value: many at once, then one at a time."""
    concurrent = 200 if quick else 1_000
    sequential = 20 if quick else 100

    async def dagnats_part(session: Session) -> Values:
        return await _dagnats_three(session, concurrent, sequential)

    async def raw_part(session: Session) -> Values:
        return await _raw_three(session, concurrent, sequential)

    label = f"three-step a → b → c, {sequential} one at a time"
    return Scenario(
        name="three-step",
        parts=(Part("dagnats", dagnats_part, 300.0), Part("raw", raw_part, 120.0)),
        rows=(
            Row(
                f"three-step a → b → c, {concurrent:,} runs at once",
                "runs/s",
                "dagnats.runs_s",
                "raw.runs_s",
                target=at_least_raw(0.5),
            ),
            Row(f"{label} p50", "ms", "dagnats.p50_ms", "raw.p50_ms"),
            Row(f"{label} p99", "ms", "dagnats.p99_ms", "raw.p99_ms"),
        ),
        notes=(
            "three-step: runs/s from the first Client.start_runs publish until the "
            f"last run completed (worker max_in_flight={CHAIN_IN_FLIGHT}); raw: "
            "a consumer per step in one process, each publishing to the next "
            "step's subject (awaiting the JetStream ack) and the last one replying.",
        ),
    )


async def _dagnats_three(session: Session, concurrent: int, sequential: int) -> Values:
    async with dagnats_stack(session) as stack:
        worker = session.children.worker(
            "bench.workers:chain_worker",
            stack.url,
            "--max-in-flight",
            str(CHAIN_IN_FLIGHT),
        )
        async with worker:
            await stack.client.register_workflow(THREE_STEPS)
            times = await _sequential_runs(stack, THREE_STEPS.name, sequential)

            completions = await Completions().watch(stack.client.nc)
            inputs = [{"n": i, "note": "bench"} for i in range(concurrent)]
            started = time.perf_counter()
            await stack.client.start_runs(THREE_STEPS.name, inputs)
            finished = await completions.wait(concurrent, 240.0)
            await completions.stop()
    return {"runs_s": concurrent / (finished - started), **latency_values(times)}


async def _raw_three(session: Session, concurrent: int, sequential: int) -> Values:
    first = raw.CHAIN_SUBJECTS[0]
    async with raw_server() as (url, nc):
        js = nc.jetstream()
        await raw.ensure_stream(js)
        async with session.children.raw("chain", url):
            times = await _raw_round_trips(nc, first, sequential)

            replies = 0
            all_back = asyncio.Event()

            async def on_reply(msg: Any) -> None:
                nonlocal replies
                replies += 1
                if replies >= concurrent:
                    all_back.set()

            inbox = nc.new_inbox()
            sub = await nc.subscribe(inbox, cb=on_reply)
            bodies = [raw.task_body(i) for i in range(concurrent)]
            started = time.perf_counter()
            await raw.publish_pipelined(js, first, bodies, {raw.REPLY_HEADER: inbox})
            await asyncio.wait_for(all_back.wait(), 100.0)
            finished = time.perf_counter()
            await sub.unsubscribe()
    return {"runs_s": concurrent / (finished - started), **latency_values(times)}


def fanout_scenario(quick: bool) -> Scenario:
    """A map step over many items: not measurable until dagnats has map steps."""
    return Scenario(
        name="fanout",
        parts=(),
        rows=(
            Row(
                "fan-out: one map step over 1,000 items",
                "-",
                skipped="skipped: map step not supported yet",
            ),
        ),
    )
