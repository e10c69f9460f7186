"""System scenarios: heartbeat cost, engine start-up over a long history, memory."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig

from bench import raw
from bench.measure import Completions, consumer_idle, consumer_info, until
from bench.model import Part, Row, Scenario, Session, Values, at_least, at_most
from bench.processes import fresh_server
from bench.stack import dagnats_stack, raw_server
from bench.workflows import HOLD, ONE_STEP
from dagnats.engine import Engine
from dagnats.natsio import connect, ensure_resources
from dagnats.protocol import (
    ENGINE_CONSUMER,
    HISTORY_STREAM,
    MSG_ID_HEADER,
    TASK_STREAM,
    StepCompleted,
    StepDispatched,
    StepStarted,
    WorkflowCompleted,
    WorkflowStarted,
    consumer_name,
    encode_event,
    history_subject,
)

EVENTS_PER_RUN = 5
_PUBLISH_CHUNK = 1000
_READ_BATCH = 1024


def heartbeats_scenario(quick: bool) -> Scenario:
    """CPU of a worker holding many tasks, its leases renewed automatically."""
    tasks = 200 if quick else 1_000
    window_s = 12.0 if quick else 30.0

    async def dagnats_part(session: Session) -> Values:
        return await _dagnats_heartbeats(session, tasks, window_s)

    label = f"heartbeats: {tasks:,} tasks in flight, AckWait 30 s"
    return Scenario(
        name="heartbeats",
        parts=(Part("dagnats", dagnats_part, window_s + 180.0),),
        rows=(
            Row(
                f"{label}: worker CPU over {window_s:g} s",
                "% of a core",
                "dagnats.cpu_pct",
                target=at_most(2, "%"),
            ),
            Row(f"{label}: redeliveries (lost leases)", "tasks", "dagnats.redelivered"),
        ),
        notes=(
            "heartbeats: utime+stime of the worker process (/proc/PID/stat) over "
            "the window, once every task is in flight and the engine is idle. "
            "Redeliveries are counted at the end of the window; in the default "
            "run the tasks have then been in flight longer than AckWait, so "
            "without heartbeats every one would have been redelivered.",
        ),
    )


async def _dagnats_heartbeats(session: Session, tasks: int, window_s: float) -> Values:
    async with dagnats_stack(session) as stack:
        options = ("--max-in-flight", str(tasks), "--ack-wait", "30")
        worker = session.children.worker(
            "bench.workers:hold_worker", stack.url, *options, "--drain-timeout", "1"
        )
        async with worker as child:
            await stack.client.register_workflow(HOLD)
            await stack.client.start_runs(HOLD.name, list(range(tasks)))
            consumer = consumer_name("bench-hold")

            async def all_held() -> bool:
                info = await consumer_info(stack.js, TASK_STREAM, consumer)
                return info is not None and info.num_ack_pending >= tasks

            await until(all_held, 120.0, f"{tasks} tasks in flight", 0.1)
            await consumer_idle(stack.js, HISTORY_STREAM, ENGINE_CONSUMER, 60.0)

            cpu_before, started = child.cpu_seconds(), time.perf_counter()
            await asyncio.sleep(window_s)  # the measurement window itself
            cpu = child.cpu_seconds() - cpu_before
            elapsed = time.perf_counter() - started
            info = await consumer_info(stack.js, TASK_STREAM, consumer)
    redelivered = float(info.num_redelivered) if info is not None else float("nan")
    return {"cpu_pct": cpu / elapsed * 100, "redelivered": redelivered}


def replay_scenario(quick: bool) -> Scenario:
    """The engine starting over a history of N events (N / 5 one-step runs)."""
    events = 20_000 if quick else 100_000

    async def dagnats_part(session: Session) -> Values:
        return await _dagnats_replay(events)

    async def raw_part(session: Session) -> Values:
        return await _raw_replay(events)

    label = f"engine start-up over {events:,} history events"
    return Scenario(
        name="replay",
        parts=(Part("dagnats", dagnats_part, 600.0), Part("raw", raw_part, 180.0)),
        rows=(
            Row(
                f"{label}, new consumer (all events live)",
                "events/s",
                "dagnats.live_events_s",
                "raw.events_s",
                target=at_least(20_000, "/s"),
            ),
            Row(
                f"{label}, restart (replay to ack floor)",
                "events/s",
                "dagnats.restart_events_s",
                "raw.events_s",
            ),
        ),
        notes=(
            "replay: synthetic valid histories (workflow.started, step.dispatched, "
            "step.started, step.completed, workflow.completed per one-step run) are "
            "published first; an Engine in the runner process then starts with a "
            "new durable consumer and is timed until that consumer has nothing "
            "pending or unacked (its actions are re-published and deduplicated); "
            "a second Engine is then timed through start(), which replays up to "
            "the ack floor without actions. Raw: a pull consumer (AckNone, batches "
            f"of {_READ_BATCH}) reading the same events and json-decoding each.",
        ),
    )


def _histories(runs: int) -> list[tuple[str, bytes, str]]:
    """``(subject, body, msg_id)`` of ``runs`` completed one-step runs."""
    definition = ONE_STEP.to_json_dict()
    published = []
    for i in range(runs):
        run_id = uuid.uuid4().hex
        task_id = f"{run_id}:1:a"
        events: list[Any] = [
            WorkflowStarted(run_id=run_id, workflow=definition, input=i),
            StepDispatched(
                run_id=run_id,
                step_id="a",
                task="bench-noop",
                task_seq=i + 1,
                dispatch=1,
            ),
            StepStarted(run_id=run_id, step_id="a", worker_id="w", task_id=task_id),
            StepCompleted(run_id=run_id, step_id="a", task_id=task_id, output=1),
            WorkflowCompleted(run_id=run_id, output=1),
        ]
        subject = history_subject(run_id)
        published += [(subject, encode_event(e), e.msg_id) for e in events]
    return published


async def _publish_histories(js: Any, events: int) -> None:
    history = _histories(events // EVENTS_PER_RUN)
    for start in range(0, len(history), _PUBLISH_CHUNK):
        await asyncio.gather(
            *(
                js.publish(subject, body, headers={MSG_ID_HEADER: msg_id})
                for subject, body, msg_id in history[start : start + _PUBLISH_CHUNK]
            )
        )


async def _dagnats_replay(events: int) -> Values:
    async with fresh_server() as server:
        nc = await connect(server.url, name="bench-replay")
        try:
            js = nc.jetstream()
            await ensure_resources(js)
            await _publish_histories(js, events)
            live_s = await _live_fold_s(nc)
            floor = (await js.consumer_info(HISTORY_STREAM, ENGINE_CONSUMER)).ack_floor
            restart_s = await _restart_s(nc)
        finally:
            await nc.close()
    processed = float(floor.stream_seq)
    return {
        "live_events_s": processed / live_s,
        "restart_events_s": processed / restart_s,
    }


async def _live_fold_s(nc: Any) -> float:
    """Seconds a first engine takes to consume the whole history."""
    engine = Engine(nc)
    started = time.perf_counter()
    await engine.start()
    try:
        await consumer_idle(nc.jetstream(), HISTORY_STREAM, ENGINE_CONSUMER, 540.0)
        elapsed = time.perf_counter() - started
        if engine.active_runs:
            raise RuntimeError(f"{engine.active_runs} synthetic runs did not complete")
    finally:
        await engine.stop()
    return elapsed


async def _restart_s(nc: Any) -> float:
    """Seconds ``Engine.start()`` takes when the history is already acked."""
    engine = Engine(nc)
    started = time.perf_counter()
    await engine.start()
    elapsed = time.perf_counter() - started
    await engine.stop()
    return elapsed


async def _raw_replay(events: int) -> Values:
    async with raw_server() as (_, nc):
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name="RAWHISTORY", subjects=["history.>"]))
        await _publish_histories(js, events)
        total = (await js.stream_info("RAWHISTORY")).state.messages
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE
        )
        started = time.perf_counter()
        sub = await js.pull_subscribe("history.>", stream="RAWHISTORY", config=config)
        read = 0
        while read < total:
            for msg in await sub.fetch(_READ_BATCH, timeout=5.0):
                json.loads(msg.data)
                read += 1
        elapsed = time.perf_counter() - started
        await sub.unsubscribe()
    return {"events_s": read / elapsed}


def memory_scenario(quick: bool) -> Scenario:
    """Peak RSS of an idle worker, and of the engine after many completed runs."""
    runs = 2_000 if quick else 10_000

    async def dagnats_part(session: Session) -> Values:
        return await _dagnats_memory(session, runs)

    async def raw_part(session: Session) -> Values:
        return await _raw_memory(session)

    return Scenario(
        name="memory",
        parts=(Part("dagnats", dagnats_part, 300.0), Part("raw", raw_part, 60.0)),
        rows=(
            Row(
                "idle worker process, peak RSS",
                "MiB",
                "dagnats.idle_worker_mib",
                "raw.idle_consumer_mib",
                target=at_most(60, "MiB"),
            ),
            Row(
                f"engine process after {runs:,} completed runs, peak RSS",
                "MiB",
                "dagnats.engine_mib",
            ),
            Row(
                f"worker process after {runs:,} tasks, peak RSS",
                "MiB",
                "dagnats.busy_worker_mib",
            ),
        ),
        notes=(
            "memory: VmHWM from /proc/PID/status; the idle worker is read once its "
            "first long poll is waiting; raw: the idle nats-py consumer process of "
            "the drain scenario.",
        ),
    )


async def _long_polling(js: Any, stream: str, consumer: str) -> None:
    async def waiting() -> bool:
        info = await consumer_info(js, stream, consumer)
        return info is not None and info.num_waiting > 0

    await until(waiting, 30.0, f"{stream}/{consumer} long-polling", 0.05)


async def _dagnats_memory(session: Session, runs: int) -> Values:
    async with dagnats_stack(session) as stack:
        worker = session.children.worker(
            "bench.workers:noop_worker", stack.url, "--max-in-flight", "256"
        )
        async with worker as child:
            await _long_polling(stack.js, TASK_STREAM, consumer_name("bench-noop"))
            idle = child.peak_rss_mib()

            await stack.client.register_workflow(ONE_STEP)
            completions = await Completions().watch(stack.client.nc)
            await stack.client.start_runs(ONE_STEP.name, list(range(runs)))
            await completions.wait(runs, 240.0)
            await completions.stop()
            busy = child.peak_rss_mib()
        engine = stack.engine.peak_rss_mib() if stack.engine else float("nan")
    return {"idle_worker_mib": idle, "engine_mib": engine, "busy_worker_mib": busy}


async def _raw_memory(session: Session) -> Values:
    async with raw_server() as (url, nc):
        js = nc.jetstream()
        await raw.ensure_stream(js)
        async with session.children.raw("drain", url) as child:
            await _long_polling(js, raw.STREAM, "raw-drain")
            idle = child.peak_rss_mib()
    return {"idle_consumer_mib": idle}
