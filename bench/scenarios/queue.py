"""Task-queue scenarios: draining a backlog, and enqueueing runs."""

from __future__ import annotations

import time

from bench import raw
from bench.measure import (
    Completions,
    consumer_idle,
    first_delivery,
    stream_holds,
    until,
)
from bench.model import Part, Row, Scenario, Session, Values, at_least_raw
from bench.stack import dagnats_stack, raw_server
from bench.workflows import ONE_STEP
from dagnats.protocol import ENGINE_CONSUMER, HISTORY_STREAM, TASK_STREAM, consumer_name

DRAIN_IN_FLIGHT = 256  # worker slots, and the raw consumer's batch
_SETUP_TIMEOUT_S = 300.0


def drain_scenario(quick: bool) -> Scenario:
    """N one-step tasks already queued, drained by one worker process."""
    n = 2_000 if quick else 20_000

    async def dagnats_part(session: Session) -> Values:
        return await _dagnats_drain(session, n)

    async def raw_part(session: Session) -> Values:
        return await _raw_drain(session, n)

    return Scenario(
        name="drain",
        parts=(Part("dagnats", dagnats_part, 420.0), Part("raw", raw_part, 120.0)),
        rows=(
            Row(
                f"drain: {n:,} queued one-step tasks, 1 worker process",
                "tasks/s",
                "dagnats.tasks_s",
                "raw.tasks_s",
                target=at_least_raw(0.5),
            ),
        ),
        notes=(
            "drain: dagnats runs are started (Client.start_runs) with the worker "
            "down; once the engine has dispatched every task and is idle, the "
            "worker process starts, timed from "
            "its first delivery until every run is completed (engine process "
            f"running, worker max_in_flight={DRAIN_IN_FLIGHT}); raw: one consumer "
            f"process fetching batches of {raw.BATCH} from a work-queue stream and "
            "acking each, timed from first delivery until all are acked.",
        ),
    )


async def _dagnats_drain(session: Session, n: int) -> Values:
    async with dagnats_stack(session) as stack:
        await stack.client.register_workflow(ONE_STEP)
        await stack.client.start_runs(ONE_STEP.name, list(range(n)))
        await stream_holds(stack.js, TASK_STREAM, n, _SETUP_TIMEOUT_S)
        await consumer_idle(stack.js, HISTORY_STREAM, ENGINE_CONSUMER, _SETUP_TIMEOUT_S)

        completions = await Completions().watch(stack.client.nc)
        worker = session.children.worker(
            "bench.workers:noop_worker",
            stack.url,
            "--max-in-flight",
            str(DRAIN_IN_FLIGHT),
        )
        async with worker:
            consumer = consumer_name("bench-noop")
            started = await first_delivery(stack.js, TASK_STREAM, consumer, 60.0)
            finished = await completions.wait(n, 360.0)
        await completions.stop()
    return {"tasks_s": n / (finished - started)}


async def _raw_drain(session: Session, n: int) -> Values:
    async with raw_server() as (url, nc):
        js = nc.jetstream()
        await raw.ensure_stream(js)
        bodies = [raw.task_body(i) for i in range(n)]
        await raw.publish_pipelined(js, raw.DRAIN_SUBJECT, bodies)

        async def all_acked() -> bool:
            info = await js.consumer_info(raw.STREAM, "raw-drain")
            return bool(info.ack_floor.consumer_seq >= n)

        async with session.children.raw("drain", url):
            started = await first_delivery(js, raw.STREAM, "raw-drain", 60.0)
            await until(all_acked, 100.0, f"raw consumer acked {n}", 0.005)
            finished = time.perf_counter()
    return {"tasks_s": n / (finished - started)}


def enqueue_scenario(quick: bool) -> Scenario:
    """Starting N one-step runs: awaited one by one, and pipelined."""
    n = 500 if quick else 5_000

    async def dagnats_part(session: Session) -> Values:
        return await _dagnats_enqueue(session, n)

    async def raw_part(session: Session) -> Values:
        return await _raw_enqueue(n)

    return Scenario(
        name="enqueue",
        parts=(Part("dagnats", dagnats_part, 240.0), Part("raw", raw_part, 120.0)),
        rows=(
            Row(
                f"enqueue: {n:,} runs, each awaited",
                "runs/s",
                "dagnats.awaited_s",
                "raw.awaited_s",
            ),
            Row(
                f"enqueue: {n:,} runs, pipelined (Client.start_runs)",
                "runs/s",
                "dagnats.pipelined_s",
                "raw.pipelined_s",
            ),
        ),
        notes=(
            "enqueue: Client.start_run awaited one by one, then Client.start_runs "
            f"(chunks of {raw.PIPELINE_CHUNK}), engine not running; raw: js.publish "
            "awaited one by one, then gathered in chunks of the same size.",
        ),
    )


async def _dagnats_enqueue(session: Session, n: int) -> Values:
    async with dagnats_stack(session, engine=False) as stack:
        client = stack.client
        await client.register_workflow(ONE_STEP)
        started = time.perf_counter()
        for i in range(n):
            await client.start_run(ONE_STEP.name, i)
        awaited = n / (time.perf_counter() - started)

        started = time.perf_counter()
        await client.start_runs(ONE_STEP.name, list(range(n)))
        pipelined = n / (time.perf_counter() - started)
    return {"awaited_s": awaited, "pipelined_s": pipelined}


async def _raw_enqueue(n: int) -> Values:
    async with raw_server() as (_, nc):
        js = nc.jetstream()
        await raw.ensure_stream(js)
        bodies = [raw.task_body(i) for i in range(n)]
        started = time.perf_counter()
        for body in bodies:
            await js.publish(raw.DRAIN_SUBJECT, body)
        awaited = n / (time.perf_counter() - started)

        started = time.perf_counter()
        await raw.publish_pipelined(js, raw.DRAIN_SUBJECT, bodies)
        pipelined = n / (time.perf_counter() - started)
    return {"awaited_s": awaited, "pipelined_s": pipelined}
