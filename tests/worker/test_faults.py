"""Deadlines, lost leases, checkpoints, pauses, poison payloads, odd names."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from dagnats import RunFailedError, TaskContext, Worker, Workflow, parse_workflow
from dagnats.natsio import connect
from dagnats.protocol import encode_token
from dagnats.testing import (
    connected_client,
    event_kinds,
    eventually,
    running_engine,
    running_worker,
)

ACK_WAIT_S = 1.0


async def _after(seconds: float) -> None:
    """Wait until wall-clock time has moved on (the engine is down meanwhile)."""
    deadline = time.time() + seconds
    await eventually(lambda: time.time() >= deadline, timeout_s=seconds + 5)


async def test_step_and_workflow_timeouts_fire_after_an_engine_restart(nats_url):
    worker = Worker(nats_url, ack_wait=ACK_WAIT_S)
    started: list[str] = []

    @worker.task("hang")
    async def hang(ctx: TaskContext) -> None:
        started.append(ctx.step_id)
        await asyncio.Event().wait()  # hangs until its deadline cancels it

    step_limited = Workflow("step-deadline").task("s", "hang", timeout=1.5).build()
    run_limited = Workflow("run-deadline", timeout=1.5).task("s", "hang").build()
    async with running_worker(worker), connected_client(nats_url) as client:
        await client.register_workflow(step_limited)
        await client.register_workflow(run_limited)
        async with running_engine(nats_url):
            step_run = await client.start_run("step-deadline")
            wf_run = await client.start_run("run-deadline")
            await eventually(lambda: len(started) == 2)
        await _after(2.0)  # both deadlines pass while no engine runs
        async with running_engine(nats_url):
            with pytest.raises(RunFailedError) as step_failed:
                await client.wait(step_run, timeout=20)
            with pytest.raises(RunFailedError) as wf_failed:
                await client.wait(wf_run, timeout=20)
            wf = await eventually(lambda: _terminal(client, wf_run))
    assert step_failed.value.error.type == "StepTimeout"
    assert wf_failed.value.error.type == "WorkflowTimeout"
    assert wf.reason == "timeout"


async def _terminal(client, run_id):
    run = await client.get_run(run_id)
    return run if run.is_terminal else None


async def test_heartbeats_do_not_extend_the_step_deadline(nats_url):
    cancelled = asyncio.Event()
    worker = Worker(nats_url, ack_wait=ACK_WAIT_S)

    @worker.task("forever")
    async def forever(ctx: TaskContext) -> None:
        try:
            while True:
                ctx.heartbeat()
                await asyncio.sleep(0.1)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    defn = Workflow("deadline").task("s", "forever", timeout=1.5).build()
    async with (
        running_engine(nats_url),
        running_worker(worker),
        connected_client(nats_url) as client,
    ):
        await client.register_workflow(defn)
        run_id = await client.start_run("deadline")
        with pytest.raises(RunFailedError) as failed:
            await client.wait(run_id, timeout=20)
        await eventually(cancelled.is_set)
        run = await client.get_run(run_id)
    assert failed.value.error.type == "StepTimeout"
    assert run.steps["s"].attempts == 1


async def test_lost_leases_alone_exhaust_the_budget_and_dead_letter(nats_url):
    deliveries: list[int] = []
    worker = Worker(nats_url, ack_wait=ACK_WAIT_S)

    @worker.task("vanish", auto_heartbeat=False)
    async def vanish(ctx: TaskContext) -> None:
        deliveries.append(ctx.retry_count)
        await asyncio.Event().wait()  # hangs without heartbeats: every lease is lost

    defn = Workflow("leases").task("s", "vanish").build()
    async with (
        running_engine(nats_url),
        running_worker(worker),
        connected_client(nats_url) as client,
    ):
        await client.register_workflow(defn)
        run_id = await client.start_run("leases")
        with pytest.raises(RunFailedError) as failed:
            await client.wait(run_id, timeout=30)
        letters = await eventually(lambda: client.dead_letters(run_id=run_id))
    assert deliveries == [0, 1, 2]  # no policy: two retries for lost leases only
    assert failed.value.error.type == "LeaseLost"
    assert letters[0].error["type"] == "LeaseLost"


async def test_a_checkpoint_from_attempt_one_is_read_in_attempt_two(nats_url):
    seen: list[object] = []
    worker = Worker(nats_url, ack_wait=ACK_WAIT_S)

    @worker.task("resume")
    async def resume(ctx: TaskContext) -> object:
        state = await ctx.load_checkpoint()
        seen.append(state)
        if ctx.retry_count == 0:
            await ctx.checkpoint({"done": 5})
            raise RuntimeError("crash after saving progress")
        return state

    @worker.task("resume-sync")
    def resume_sync(ctx: TaskContext) -> object:
        state = ctx.load_checkpoint()
        if ctx.retry_count == 0:
            ctx.checkpoint({"sync": True})
            raise RuntimeError("crash")
        return state

    defn = parse_workflow(
        {
            "name": "cp",
            "default_retry": {"max_attempts": 1, "initial_delay": "100ms"},
            "steps": [
                {"id": "a", "task": "resume"},
                {"id": "b", "task": "resume-sync"},
            ],
        }
    )
    async with (
        running_engine(nats_url),
        running_worker(worker),
        connected_client(nats_url) as client,
    ):
        await client.register_workflow(defn)
        output = await client.run("cp", timeout=30)
    assert seen == [None, {"done": 5}]
    assert output == {"a": {"done": 5}, "b": {"sync": True}}


async def test_pause_defers_without_using_a_retry(nats_url):
    runs: list[tuple[int, str, float]] = []
    worker = Worker(nats_url, ack_wait=ACK_WAIT_S)

    @worker.task("patient")
    async def patient(ctx: TaskContext) -> str:
        runs.append((ctx.retry_count, ctx.resumed_from, time.monotonic()))
        if not ctx.resumed_from:
            await ctx.checkpoint({"step": 1})
            ctx.pause("waiting-for-data", 0.3)
            return "ignored"
        return f"resumed with {await ctx.load_checkpoint()}"

    defn = Workflow("pause").task("s", "patient").build()  # no retry policy at all
    async with (
        running_engine(nats_url),
        running_worker(worker),
        connected_client(nats_url) as client,
    ):
        await client.register_workflow(defn)
        run_id = await client.start_run("pause")
        output = await client.wait(run_id, timeout=20)
        kinds = await event_kinds(client, run_id)
    assert output == "resumed with {'step': 1}"
    assert [(r[0], r[1]) for r in runs] == [(0, ""), (0, "waiting-for-data")]
    assert runs[1][2] - runs[0][2] >= 0.3
    assert "step.paused" in kinds
    assert "step.failed" not in kinds


async def test_a_poison_payload_is_dead_lettered_and_does_not_stop_the_worker(nats_url):
    worker = Worker(nats_url, ack_wait=ACK_WAIT_S)

    @worker.task("eat")
    def eat(ctx: TaskContext) -> str:
        return "fine"

    nc = await connect(nats_url)
    try:
        js = nc.jetstream()
        await js.publish(f"task.{encode_token('eat')}.bogus", b"{not json")
        async with (
            running_engine(nats_url),
            running_worker(worker),
            connected_client(nats_url) as client,
        ):
            letters = await eventually(lambda: client.dead_letters(workflow="_invalid"))
            await client.register_workflow(Workflow("eat").task("s", "eat").build())
            assert await client.run("eat", timeout=20) == "fine"
        info = await js.consumer_info("TASK_QUEUES", "task_eat")
    finally:
        await nc.close()
    assert letters[0].task == "eat"
    assert letters[0].error["type"] == "InvalidPayload"
    assert info.num_pending == 0
    assert info.num_ack_pending == 0


async def test_task_names_with_dots_spaces_wildcards_and_unicode_do_not_collide(
    nats_url,
):
    names = ["render", "render.gpu", "with space", "star*", "gt>", "ünïcødé.λ"]
    worker = Worker(nats_url, ack_wait=ACK_WAIT_S)
    for name in names:
        worker.register(name, _echo_task_name)
    builder = Workflow("names")
    for index, name in enumerate(names):
        builder.task(f"step {index} · {name}", name)
    async with (
        running_engine(nats_url),
        running_worker(worker),
        connected_client(nats_url) as client,
    ):
        await client.register_workflow(builder.build())
        output = await client.run("names", timeout=20)
    assert sorted(value["task"] for value in output.values()) == sorted(names)
    assert all(step == value["step"] for step, value in output.items())
    assert json.dumps(output, ensure_ascii=False)


def _echo_task_name(ctx: TaskContext) -> dict[str, str]:
    return {"task": ctx.task, "step": ctx.step_id}


async def test_a_handler_raising_system_exit_fails_the_step_not_the_worker(nats_url):
    worker = Worker(nats_url, ack_wait=ACK_WAIT_S)

    @worker.task("quit-sync")
    def quit_sync(ctx: TaskContext) -> None:
        raise KeyboardInterrupt("boom")

    @worker.task("quit-async")
    async def quit_async(ctx: TaskContext) -> None:
        raise SystemExit(3)

    @worker.task("still-alive")
    def still_alive(ctx: TaskContext) -> str:
        return "alive"

    async with (
        running_engine(nats_url),
        running_worker(worker),
        connected_client(nats_url) as client,
    ):
        for name in ("quit-sync", "quit-async"):
            await client.register_workflow(Workflow(name).task("s", name).build())
            with pytest.raises(RunFailedError) as failed:
                await client.run(name, timeout=20)
            assert failed.value.error.type == "HandlerExitError"
        await client.register_workflow(
            Workflow("alive").task("s", "still-alive").build()
        )
        assert await client.run("alive", timeout=20) == "alive"


async def test_more_task_types_than_slots_all_get_served(nats_url):
    worker = Worker(nats_url, ack_wait=ACK_WAIT_S, max_in_flight=1)
    for name in ("t-one", "t-two", "t-three"):
        worker.register(name, _echo_task_name)
    async with (
        running_engine(nats_url),
        running_worker(worker),
        connected_client(nats_url) as client,
    ):
        await client.register_workflow(
            Workflow("only-three").task("s", "t-three").build()
        )
        output = await client.run("only-three", timeout=20)
    assert output["task"] == "t-three"


async def test_an_output_too_large_for_nats_fails_the_step_once_with_a_clear_error(
    nats_url,
):
    calls: list[int] = []
    worker = Worker(nats_url, ack_wait=ACK_WAIT_S)

    @worker.task("huge")
    def huge(ctx: TaskContext) -> str:
        calls.append(ctx.retry_count)
        return "x" * (2 * 1024 * 1024)

    @worker.task("deep")
    def deep(ctx: TaskContext) -> list[object]:
        value: list[object] = []
        for _ in range(600):
            value = [value]
        return value

    async with (
        running_engine(nats_url),
        running_worker(worker),
        connected_client(nats_url) as client,
    ):
        await client.register_workflow(Workflow("huge").task("s", "huge").build())
        with pytest.raises(RunFailedError) as failed:
            await client.run("huge", timeout=20)
        await client.register_workflow(Workflow("deep").task("s", "deep").build())
        with pytest.raises(RunFailedError) as too_deep:
            await client.run("deep", timeout=20)
    assert calls == [0]
    assert failed.value.error.type == "OutputTooLarge"
    assert "reference" in failed.value.error.message
    assert too_deep.value.error.type in {"OutputNotSerializable", "PermanentFailure"}


async def test_values_near_the_message_limit_never_wedge_the_engine(nats_url):
    """A 900 KB input echoed as output: the run completes, the engine moves on."""
    worker = Worker(nats_url, ack_wait=ACK_WAIT_S)

    @worker.task("echo-big")
    def echo_big(ctx: TaskContext) -> object:
        return ctx.input

    @worker.task("tiny")
    def tiny(ctx: TaskContext) -> str:
        return "tiny"

    big = "y" * 900_000
    async with (
        running_engine(nats_url),
        running_worker(worker),
        connected_client(nats_url) as client,
    ):
        await client.register_workflow(
            Workflow("echo-big").task("s", "echo-big").build()
        )
        fan_in = (
            Workflow("fan-in-big")
            .task("a", "echo-big")
            .task("b", "echo-big")
            .task("c", "echo-big", depends_on=["a", "b"])  # input: both, 1.2 MB
            .build()
        )
        await client.register_workflow(fan_in)
        await client.register_workflow(Workflow("tiny").task("s", "tiny").build())
        output = await client.run("echo-big", big, timeout=30)
        with pytest.raises(RunFailedError) as failed:
            await client.run("fan-in-big", big[:600_000], timeout=30)
        assert await client.run("tiny", timeout=30) == "tiny"  # the engine is not stuck
    assert output == big or output.get("truncated") is True
    assert failed.value.error.type == "TaskInputTooLarge"
