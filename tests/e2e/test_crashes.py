"""Processes die with SIGKILL mid-run; runs still complete, steps apply once."""

from __future__ import annotations

import asyncio
import signal

from tests.e2e.processes import handler_log, kill, spawn

from dagnats import TaskContext, Worker, Workflow
from dagnats.testing.harness import (
    connected_client,
    event_kinds,
    eventually,
    running_engine,
    running_worker,
)


async def test_worker_killed_mid_task_is_redelivered_to_another_worker(
    nats_url, tmp_path
):
    defn = Workflow("crash-worker").task("s", "stuck-first-time").build()
    first = spawn(["worker", "tests.e2e.workers:stuck_first_time"], nats_url, tmp_path)
    second = None
    try:
        async with running_engine(nats_url), connected_client(nats_url) as client:
            await client.register_workflow(defn)
            run_id = await client.start_run("crash-worker")
            await eventually(lambda: len(handler_log(tmp_path)) == 1, timeout_s=30)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)

            second = spawn(
                ["worker", "tests.e2e.workers:stuck_first_time"], nats_url, tmp_path
            )
            output = await client.wait(run_id, timeout=60)
            kinds = await event_kinds(client, run_id)
            run = await client.get_run(run_id)
    finally:
        kill(first)
        if second is not None:
            kill(second)

    runs = handler_log(tmp_path)
    assert [r["retry_count"] for r in runs] == [0, 1]
    assert runs[0]["pid"] == first.pid
    assert runs[1]["pid"] == second.pid
    assert output == {"retry_count": 1, "pid": second.pid}
    assert kinds.count("step.completed") == 1
    assert run.steps["s"].attempts == 2
    assert run.steps["s"].history[0]["outcome"] == "lease_lost"


async def test_engine_killed_mid_run_and_restarted_completes_each_step_once(
    nats_url, tmp_path
):
    executions: dict[str, int] = {}
    release = asyncio.Event()
    worker = Worker(nats_url, ack_wait=5)

    @worker.task("count")
    async def count(ctx: TaskContext) -> str:
        executions[ctx.step_id] = executions.get(ctx.step_id, 0) + 1
        if ctx.step_id == "b":
            await release.wait()
        return f"{ctx.input}>{ctx.step_id}"

    defn = (
        Workflow("chain")
        .task("a", "count")
        .task("b", "count", depends_on=["a"])
        .task("c", "count", depends_on=["b"])
        .build()
    )
    engine = spawn(
        ["serve", "--nats-url", nats_url, "--http-port", "0"], nats_url, tmp_path
    )
    try:
        async with running_worker(worker), connected_client(nats_url) as client:
            await client.register_workflow(defn)
            run_id = await client.start_run("chain", "in")
            await eventually(lambda: executions.get("b") == 1, timeout_s=30)
            engine.send_signal(signal.SIGKILL)
            engine.wait(timeout=10)

            release.set()  # b completes while no engine is running
            engine = spawn(
                ["serve", "--nats-url", nats_url, "--http-port", "0"],
                nats_url,
                tmp_path,
            )
            output = await client.wait(run_id, timeout=60)
            kinds = await event_kinds(client, run_id)
    finally:
        kill(engine)

    assert output == "in>a>b>c"
    assert executions == {"a": 1, "b": 1, "c": 1}
    assert kinds.count("step.completed") == 3
    assert kinds.count("workflow.completed") == 1
    assert "step.result_ignored" not in kinds
