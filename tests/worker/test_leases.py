"""Leases, heartbeats and redelivery on a real nats-server (AckWait of 1 s)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from dagnats import TaskContext, Worker, Workflow
from dagnats.errors import TaskAlreadyResolvedError
from dagnats.testing import (
    connected_client,
    event_kinds,
    eventually,
    running_engine,
    running_worker,
)

ACK_WAIT_S = 1.0


async def _run(url: str, worker: Worker, defn, value=None, timeout_s: float = 30.0):
    async with (
        running_engine(url),
        running_worker(worker),
        connected_client(url) as client,
    ):
        await client.register_workflow(defn)
        run_id = await client.start_run(defn.name, value)
        output = await client.wait(run_id, timeout=timeout_s)
        kinds = await event_kinds(client, run_id)
        run = await client.get_run(run_id)
    return output, kinds, run


async def test_explicit_heartbeats_keep_a_long_task_from_redelivery(nats_url):
    executions: list[int] = []
    worker = Worker(nats_url, ack_wait=ACK_WAIT_S)

    @worker.task("long", auto_heartbeat=False)
    async def long(ctx: TaskContext) -> str:
        executions.append(ctx.retry_count)
        deadline = time.monotonic() + 3 * ACK_WAIT_S
        while time.monotonic() < deadline:
            ctx.heartbeat()
            await asyncio.sleep(ACK_WAIT_S / 3)
        return "done"

    output, kinds, _ = await _run(
        nats_url, worker, Workflow("hb").task("s", "long").build()
    )
    assert output == "done"
    assert executions == [0]
    assert kinds.count("step.started") == 1


async def test_without_heartbeats_the_task_is_redelivered_with_a_higher_retry_count(
    nats_url,
):
    executions: list[int] = []
    worker = Worker(nats_url, ack_wait=ACK_WAIT_S)

    @worker.task("silent", auto_heartbeat=False)
    async def silent(ctx: TaskContext) -> int:
        executions.append(ctx.retry_count)
        if ctx.retry_count == 0:
            await (
                asyncio.Event().wait()
            )  # hung, no heartbeats: cancelled when superseded
        return ctx.retry_count

    output, kinds, run = await _run(
        nats_url, worker, Workflow("nohb").task("s", "silent").build()
    )
    assert output == 1
    assert executions[:2] == [0, 1]
    assert kinds.count("step.completed") == 1
    assert run.steps["s"].history[0]["outcome"] == "lease_lost"


async def test_auto_heartbeat_keeps_a_blocking_sync_handler_alive(nats_url):
    executions: list[int] = []
    worker = Worker(nats_url, ack_wait=ACK_WAIT_S)

    @worker.task("blocking")
    def blocking(ctx: TaskContext) -> str:
        executions.append(ctx.retry_count)
        time.sleep(3 * ACK_WAIT_S)  # blocking on purpose: runs in a thread
        return "ok"

    output, kinds, _ = await _run(
        nats_url, worker, Workflow("auto").task("s", "blocking").build()
    )
    assert output == "ok"
    assert executions == [0]
    assert kinds.count("step.started") == 1


async def test_heartbeat_after_complete_raises(nats_url):
    seen: list[BaseException] = []
    worker = Worker(nats_url, ack_wait=ACK_WAIT_S)

    @worker.task("resolve")
    def resolve(ctx: TaskContext) -> None:
        ctx.complete("early")
        try:
            ctx.heartbeat()
        except TaskAlreadyResolvedError as exc:
            seen.append(exc)
        with pytest.raises(TaskAlreadyResolvedError):
            ctx.complete("twice")

    output, _, _ = await _run(
        nats_url, worker, Workflow("res").task("s", "resolve").build()
    )
    assert output == "early"
    assert len(seen) == 1
    assert "after the task was resolved" in str(seen[0])


async def test_worker_fetches_no_more_than_its_free_slots(nats_url):
    """Prefetched messages must not age past their lease in a client buffer."""
    executions: list[str] = []
    worker = Worker(nats_url, ack_wait=ACK_WAIT_S, max_in_flight=1)

    @worker.task("slow")
    async def slow(ctx: TaskContext) -> str:
        executions.append(ctx.step_id)
        await asyncio.sleep(2 * ACK_WAIT_S)
        return ctx.step_id

    defn = (
        Workflow("slots").task("a", "slow").task("b", "slow").task("c", "slow").build()
    )
    output, kinds, _ = await _run(nats_url, worker, defn)
    assert output == {"a": "a", "b": "b", "c": "c"}
    assert sorted(executions) == ["a", "b", "c"]
    assert kinds.count("step.started") == 3


async def test_a_superseded_slow_worker_does_not_complete_the_step(nats_url):
    """Stale worker: its late result is ignored and it never acks the new copy."""
    first_started = threading.Event()
    release_first = asyncio.Event()
    executions: list[tuple[str, int]] = []
    slow = Worker(nats_url, ack_wait=ACK_WAIT_S)
    fast = Worker(nats_url, ack_wait=ACK_WAIT_S)

    @slow.task("race", auto_heartbeat=False)
    async def slow_handler(ctx: TaskContext) -> str:
        executions.append(("slow", ctx.retry_count))
        first_started.set()
        await release_first.wait()  # hangs without heartbeats: loses its lease
        return "slow"

    defn = Workflow("race").task("s", "race").build()
    async with running_engine(nats_url), connected_client(nats_url) as client:
        await client.register_workflow(defn)
        async with running_worker(slow):
            run_id = await client.start_run("race")
            await eventually(first_started.is_set)

            @fast.task("race")
            async def fast_handler(ctx: TaskContext) -> str:
                executions.append(("fast", ctx.retry_count))
                return "fast"

            async with running_worker(fast):
                output = await client.wait(run_id, timeout=30)
                release_first.set()
        kinds = await event_kinds(client, run_id)
    assert output == "fast"
    assert any(name == "fast" and count >= 1 for name, count in executions)
    assert kinds.count("step.completed") == 1


async def test_an_async_handler_blocking_the_loop_is_reported_with_its_step(
    nats_url, caplog
):
    worker = Worker(nats_url, ack_wait=3.0)

    @worker.task("hog")
    async def hog(ctx: TaskContext) -> str:
        time.sleep(1.5)  # noqa: ASYNC251 - the blocking call under test
        return "done"

    defn = Workflow("hog").task("cpu-bound", "hog").build()
    output, _, _ = await _run(nats_url, worker, defn)
    assert output == "done"
    assert worker.watchdog is not None
    assert worker.watchdog.stalls >= 1
    blocked = [
        r.getMessage() for r in caplog.records if "event loop blocked" in r.getMessage()
    ]
    assert any("/cpu-bound#1" in message for message in blocked)
