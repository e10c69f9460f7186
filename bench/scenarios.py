"""The scenarios: each returns (dagnats value, raw value) for one repeat."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import nats
from nats.js.api import RetentionPolicy, StreamConfig
from nats.js.errors import NotFoundError

from bench.harness import (
    Process,
    drain_rate,
    engine,
    fresh_server,
    percentile,
    until,
    worker,
)
from dagnats import Client, Workflow
from dagnats.dag import Limits
from dagnats.engine.replay import replay_history
from dagnats.protocol import (
    MSG_ID_HEADER,
    StepCompleted,
    StepDispatched,
    StepStarted,
    WorkflowCompleted,
    WorkflowStarted,
    encode_event,
    history_subject,
)

ONE_STEP = Workflow("bench-one").task("a", "bench-noop").build()
THREE_STEPS = (
    Workflow("bench-three")
    .task("a", "bench-pass")
    .task("b", "bench-pass", depends_on=["a"])
    .task("c", "bench-pass", depends_on=["b"])
    .build()
)
CHUNK = 512


async def _raw_stream(js: Any) -> None:
    await js.add_stream(
        StreamConfig(
            name="RAWBENCH",
            subjects=["rawtask.>", "rawreply.>", "rawchain.>"],
            retention=RetentionPolicy.WORK_QUEUE,
        )
    )


async def _publish_all(
    js: Any, subject: str, count: int, headers: dict[str, str] | None = None
) -> None:
    for start in range(0, count, CHUNK):
        batch = range(start, min(count, start + CHUNK))
        await asyncio.gather(
            *(js.publish(subject, b'{"n":%d}' % i, headers=headers) for i in batch)
        )


# --- drain ---------------------------------------------------------------------


async def drain(n: int, logs: Path) -> dict[str, float]:
    """N queued one-step tasks drained by one worker process: tasks/s."""
    result: dict[str, float] = {}
    async with fresh_server() as server, Client(server.url) as client:
        eng = engine(server.url, logs / "engine.log")
        try:
            await client.register_workflow(ONE_STEP)
            await client.start_runs("bench-one", list(range(n)))
            js = client.nc.jetstream()

            async def queued() -> bool:
                return (await js.stream_info("TASK_QUEUES")).state.messages >= n

            await until(queued, 300)
            work = worker("bench.workers:noop", server.url, logs / "worker.log")
            try:
                result["dagnats"] = await drain_rate(
                    js, "TASK_QUEUES", "task_bench-noop", n, 600
                )
            finally:
                work.stop()
            result["engine_rss_mib"] = eng.peak_rss_mib()
        finally:
            eng.stop()
    async with fresh_server() as server:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await _raw_stream(js)
        await _publish_all(js, "rawtask.x", n)
        raw = Process(
            ["-m", "bench.raw", "drain", server.url], server.url, logs / "raw.log"
        )
        try:
            result["raw"] = await drain_rate(js, "RAWBENCH", "raw-drain", n, 600)
        finally:
            raw.stop()
            await nc.close()
    return result


# --- enqueue -------------------------------------------------------------------


async def enqueue(n: int, logs: Path) -> dict[str, float]:
    """Starting N one-step runs (no engine running): runs/s, awaited and bulk."""
    result: dict[str, float] = {}
    async with fresh_server() as server, Client(server.url) as client:
        await client.register_workflow(ONE_STEP)
        started = time.perf_counter()
        for i in range(n):
            await client.start_run("bench-one", i)
        result["dagnats"] = n / (time.perf_counter() - started)
        started = time.perf_counter()
        await client.start_runs("bench-one", list(range(n)))
        result["dagnats_bulk"] = n / (time.perf_counter() - started)
    async with fresh_server() as server:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await _raw_stream(js)
        started = time.perf_counter()
        for i in range(n):
            await js.publish("rawtask.x", b'{"n":%d}' % i)
        result["raw"] = n / (time.perf_counter() - started)
        started = time.perf_counter()
        await _publish_all(js, "rawtask.y", n)
        result["raw_bulk"] = n / (time.perf_counter() - started)
        await nc.close()
    return result


# --- latency and chains --------------------------------------------------------


async def latency(n: int, logs: Path) -> dict[str, float]:
    """One-step runs one after another on an idle system: p50/p99 ms."""
    result: dict[str, float] = {}
    async with fresh_server() as server, Client(server.url) as client:
        eng = engine(server.url, logs / "engine.log")
        work = worker("bench.workers:noop", server.url, logs / "worker.log")
        try:
            await client.register_workflow(ONE_STEP)
            await client.run("bench-one", 0, timeout=60)  # warm up
            times = []
            for i in range(n):
                started = time.perf_counter()
                await client.run("bench-one", i, timeout=30)
                times.append((time.perf_counter() - started) * 1000)
            result["dagnats_p50"], result["dagnats_p99"] = (
                percentile(times, 0.5),
                percentile(times, 0.99),
            )
            result["worker_idle_rss_mib"] = work.peak_rss_mib()
        finally:
            work.stop()
            eng.stop()
    async with fresh_server() as server:
        times = await _raw_round_trips(server.url, "reply", "rawreply.x", n, logs)
        result["raw_p50"], result["raw_p99"] = (
            percentile(times, 0.5),
            percentile(times, 0.99),
        )
    return result


async def _raw_round_trips(
    url: str, mode: str, subject: str, n: int, logs: Path
) -> list[float]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await _raw_stream(js)
    raw = Process(["-m", "bench.raw", mode, url], url, logs / "raw.log")
    try:
        times = []
        for i in range(n + 1):
            inbox = nc.new_inbox()
            sub = await nc.subscribe(inbox, max_msgs=1)
            started = time.perf_counter()
            await js.publish(subject, b'{"n":%d}' % i, headers={"Reply-To": inbox})
            await sub.next_msg(timeout=30)
            if i:  # the first one warms up
                times.append((time.perf_counter() - started) * 1000)
        return times
    finally:
        raw.stop()
        await nc.close()


async def three_steps(concurrent: int, sequential: int, logs: Path) -> dict[str, float]:
    """a → b → c: runs/s with many at once, and p50/p99 ms one at a time."""
    result: dict[str, float] = {}
    async with fresh_server() as server, Client(server.url) as client:
        eng = engine(server.url, logs / "engine.log")
        work = worker("bench.workers:noop", server.url, logs / "worker.log")
        try:
            await client.register_workflow(THREE_STEPS)
            await client.run("bench-three", 0, timeout=60)
            started = time.perf_counter()
            run_ids = await client.start_runs("bench-three", list(range(concurrent)))
            await asyncio.gather(*(client.wait(r, timeout=300) for r in run_ids))
            result["dagnats_runs_s"] = concurrent / (time.perf_counter() - started)
            times = []
            for i in range(sequential):
                t0 = time.perf_counter()
                await client.run("bench-three", i, timeout=30)
                times.append((time.perf_counter() - t0) * 1000)
            result["dagnats_p50"], result["dagnats_p99"] = (
                percentile(times, 0.5),
                percentile(times, 0.99),
            )
        finally:
            work.stop()
            eng.stop()
    async with fresh_server() as server:
        result.update(await _raw_chain(server.url, concurrent, sequential, logs))
    return result


async def _raw_chain(
    url: str, concurrent: int, sequential: int, logs: Path
) -> dict[str, float]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await _raw_stream(js)
    raw = Process(["-m", "bench.raw", "chain", url], url, logs / "raw.log")
    out: dict[str, float] = {}
    try:
        inbox = nc.new_inbox()
        done = asyncio.Event()
        seen = 0

        async def on_reply(msg: Any) -> None:
            nonlocal seen
            seen += 1
            if seen >= concurrent + 1:
                done.set()

        sub = await nc.subscribe(inbox, cb=on_reply)
        await js.publish("rawchain.a", b"0", headers={"Reply-To": inbox})
        await until(lambda: _true_if(seen >= 1), 30)
        started = time.perf_counter()
        await _publish_all(js, "rawchain.a", concurrent, headers={"Reply-To": inbox})
        await asyncio.wait_for(done.wait(), 300)
        out["raw_runs_s"] = concurrent / (time.perf_counter() - started)
        await sub.unsubscribe()
        times = await _sequential_chain(nc, js, sequential)
        out["raw_p50"], out["raw_p99"] = percentile(times, 0.5), percentile(times, 0.99)
    finally:
        raw.stop()
        await nc.close()
    return out


async def _true_if(value: bool) -> bool:
    return value


async def _sequential_chain(nc: Any, js: Any, count: int) -> list[float]:
    times = []
    for i in range(count):
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox, max_msgs=1)
        t0 = time.perf_counter()
        await js.publish("rawchain.a", b"%d" % i, headers={"Reply-To": inbox})
        await sub.next_msg(timeout=30)
        times.append((time.perf_counter() - t0) * 1000)
    return times


# --- system: heartbeats, replay -------------------------------------------------


async def heartbeats(in_flight: int, window_s: float, logs: Path) -> dict[str, float]:
    """CPU of a worker holding ``in_flight`` tasks with automatic heartbeats."""
    hold = Workflow("bench-hold").task("h", "bench-hold").build()
    async with fresh_server() as server, Client(server.url) as client:
        eng = engine(server.url, logs / "engine.log")
        work = worker(
            "bench.workers:holding",
            server.url,
            logs / "worker.log",
            "--drain-timeout",
            "1",
        )
        try:
            await client.register_workflow(hold)
            await client.start_runs("bench-hold", list(range(in_flight)))
            js = client.nc.jetstream()

            async def all_in_flight() -> bool:
                try:
                    info = await js.consumer_info("TASK_QUEUES", "task_bench-hold")
                except NotFoundError:
                    return False  # the worker has not created it yet
                return bool(info.num_ack_pending >= in_flight)

            await until(all_in_flight, 60, every_s=0.2)
            cpu0, t0 = work.cpu_seconds(), time.perf_counter()
            await asyncio.sleep(window_s)
            cpu = (work.cpu_seconds() - cpu0) / (time.perf_counter() - t0) * 100
        finally:
            work.stop()
            eng.stop()
    return {"dagnats_cpu_pct": cpu}


async def replay(events: int, logs: Path) -> dict[str, float]:
    """The engine's start-up fold over ``events`` history events: events/s."""
    runs = events // 5
    defn = ONE_STEP.to_json_dict()
    async with fresh_server() as server:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        async with Client(nc=nc):
            pass  # creates the streams
        for start in range(0, runs, 200):
            batch = []
            for i in range(start, min(runs, start + 200)):
                batch.extend(_one_run_events(defn, i))
            await asyncio.gather(
                *(
                    js.publish(
                        history_subject(e.run_id),
                        encode_event(e),
                        headers={MSG_ID_HEADER: e.msg_id},
                    )
                    for e in batch
                )
            )
        last = (await js.stream_info("WORKFLOW_HISTORY")).state.last_seq
        started = time.perf_counter()
        folded = await replay_history(js, last, Limits())
        elapsed = time.perf_counter() - started
        await nc.close()
    assert len(folded) == runs
    return {"dagnats_events_s": last / elapsed}


def _one_run_events(defn: dict[str, Any], i: int) -> list[Any]:
    run_id = uuid.uuid4().hex
    task_id = f"{run_id}:1:a"
    return [
        WorkflowStarted(run_id=run_id, workflow=defn, input=i),
        StepDispatched(
            run_id=run_id, step_id="a", task="bench-noop", task_seq=i + 1, dispatch=1
        ),
        StepStarted(run_id=run_id, step_id="a", worker_id="w", task_id=task_id),
        StepCompleted(run_id=run_id, step_id="a", output=i, task_id=task_id),
        WorkflowCompleted(run_id=run_id, output=i),
    ]


def dumps(value: Any) -> str:
    """Compact JSON for logs."""
    return json.dumps(value, separators=(",", ":"))
