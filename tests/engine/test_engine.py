"""The engine with in-process workers on a real nats-server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from dagnats import RunFailedError, TaskContext, Worker, Workflow
from dagnats.protocol import (
    MSG_ID_HEADER,
    StepCompleted,
    encode_event,
    history_subject,
)
from dagnats.testing.harness import (
    connected_client,
    event_kinds,
    eventually,
    running_engine,
    running_worker,
)

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "examples"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "workflows"


def _hello_worker(url: str) -> Worker:
    worker = Worker(url, ack_wait=5)

    @worker.task("greet")
    def greet(ctx: TaskContext, name: str) -> str:
        return f"Hello, {name}!"

    @worker.task("uppercase")
    async def uppercase(ctx: TaskContext, text: str) -> str:
        return text.upper()

    return worker


async def test_hello_world_runs_end_to_end_via_the_sdk(nats_url):
    async with (
        running_engine(nats_url),
        running_worker(_hello_worker(nats_url)),
        connected_client(nats_url) as client,
    ):
        await client.register_workflow(EXAMPLES / "hello-world.json")
        run_id = await client.start_run("hello-world", "Alice")
        assert await client.wait(run_id, timeout=20) == "HELLO, ALICE!"

        run = await eventually(lambda: _completed(client, run_id))
        assert run.steps["greet"].output == "Hello, Alice!"
        assert run.steps["uppercase"].attempts == 1
        kinds = await event_kinds(client, run_id)
        assert kinds[0] == "workflow.started"
        assert kinds.count("step.completed") == 2
        assert kinds[-1] == "workflow.completed"


async def _completed(client, run_id):
    run = await client.get_run(run_id)
    return run if run.status == "completed" else None


async def test_diamond_fan_in_gets_an_object_keyed_by_step_id(nats_url):
    seen: dict[str, object] = {}
    worker = Worker(nats_url, ack_wait=5)

    @worker.task("node")
    def node(ctx: TaskContext) -> object:
        seen[ctx.step_id] = ctx.input
        return f"out-{ctx.step_id}"

    defn = (
        Workflow("diamond")
        .task("a", "node")
        .task("b", "node", depends_on=["a"])
        .task("c", "node", depends_on=["a"])
        .task("d", "node", depends_on=["b", "c"])
        .build()
    )
    async with (
        running_engine(nats_url),
        running_worker(worker),
        connected_client(nats_url) as client,
    ):
        await client.register_workflow(defn)
        output = await client.run("diamond", {"seed": 1}, timeout=20)
    assert output == "out-d"
    assert seen["a"] == {"seed": 1}
    assert seen["b"] == "out-a"
    assert seen["c"] == "out-a"
    assert seen["d"] == {"b": "out-b", "c": "out-c"}


async def test_same_completion_published_twice_is_applied_once(nats_url, nc):
    release = asyncio.Event()
    worker = Worker(nats_url, ack_wait=5)

    @worker.task("hold")
    async def hold(ctx: TaskContext) -> str:
        await release.wait()
        return "from-worker"

    defn = Workflow("hold").task("h", "hold").build()
    async with (
        running_engine(nats_url),
        running_worker(worker),
        connected_client(nats_url) as client,
    ):
        await client.register_workflow(defn)
        run_id = await client.start_run("hold")
        await eventually(lambda: _step_status(client, run_id, "h", "running"))

        forged = StepCompleted(run_id=run_id, step_id="h", attempt=0, output="forged")
        js = nc.jetstream()
        first = await js.publish(
            history_subject(run_id),
            encode_event(forged),
            headers={MSG_ID_HEADER: forged.msg_id},
        )
        second = await js.publish(
            history_subject(run_id),
            encode_event(forged),
            headers={MSG_ID_HEADER: forged.msg_id},
        )
        assert second.duplicate
        assert not first.duplicate
        # Beyond the dedup window the same result arrives under another id.
        await js.publish(
            history_subject(run_id),
            encode_event(forged),
            headers={MSG_ID_HEADER: "other-id"},
        )

        assert await client.wait(run_id, timeout=20) == "forged"
        release.set()  # the worker's own completion has the same id: dropped too
        kinds = await eventually(lambda: _kinds_with(client, run_id, 1))
        run = await client.get_run(run_id)
    assert (
        kinds.count("step.completed") == 2
    )  # the forged one, and the one under another id
    assert kinds.count("workflow.completed") == 1
    assert run.output == "forged"
    assert run.steps["h"].output == "forged"


async def _kinds_with(client, run_id, ignored):
    kinds = await event_kinds(client, run_id)
    return kinds if kinds.count("step.result_ignored") >= ignored else None


async def _step_status(client, run_id, step, status):
    run = await client.get_run(run_id)
    return run.steps[step].status == status


async def test_handler_exception_fails_the_run_with_type_and_message(nats_url):
    worker = Worker(nats_url, ack_wait=5)

    @worker.task("explode")
    def explode(ctx: TaskContext) -> None:
        raise ValueError("bad value 42")

    defn = Workflow("explode").task("x", "explode").build()
    async with (
        running_engine(nats_url),
        running_worker(worker),
        connected_client(nats_url) as client,
    ):
        await client.register_workflow(defn)
        run_id = await client.start_run("explode")
        with pytest.raises(RunFailedError) as info:
            await client.wait(run_id, timeout=20)
        assert info.value.status == "failed"
        assert info.value.error.type == "ValueError"
        assert "bad value 42" in info.value.error.message
        run = await client.get_run(run_id)
        assert run.steps["x"].error.type == "ValueError"


async def test_run_is_pinned_to_the_definition_it_started_with(nats_url):
    release = asyncio.Event()
    worker = Worker(nats_url, ack_wait=5)

    @worker.task("first")
    async def first(ctx: TaskContext) -> str:
        await release.wait()
        return "one"

    @worker.task("second")
    def second(ctx: TaskContext) -> str:
        return ctx.input + "-two"

    v1 = (
        Workflow("pinned")
        .task("a", "first")
        .task("b", "second", depends_on=["a"])
        .build()
    )
    v2 = Workflow("pinned").task("a", "first").build()
    async with (
        running_engine(nats_url),
        running_worker(worker),
        connected_client(nats_url) as client,
    ):
        await client.register_workflow(v1)
        run_id = await client.start_run("pinned")
        await eventually(lambda: _step_status(client, run_id, "a", "running"))
        await client.register_workflow(v2)
        release.set()
        assert await client.wait(run_id, timeout=20) == "one-two"


async def test_cancel_stops_a_running_run(nats_url):
    worker = Worker(nats_url, ack_wait=5)
    stop = asyncio.Event()

    @worker.task("forever")
    async def forever(ctx: TaskContext) -> None:
        await stop.wait()

    defn = Workflow("cancel-me").task("f", "forever").build()
    async with (
        running_engine(nats_url),
        running_worker(worker),
        connected_client(nats_url) as client,
    ):
        await client.register_workflow(defn)
        run_id = await client.start_run("cancel-me")
        await eventually(lambda: _step_status(client, run_id, "f", "running"))
        assert await client.cancel(run_id) is True
        with pytest.raises(RunFailedError) as info:
            await client.wait(run_id, timeout=20)
        assert info.value.status == "cancelled"
        run = await eventually(lambda: _status(client, run_id, "cancelled"))
        assert run.steps["f"].status == "cancelled"
        stop.set()


async def _status(client, run_id, status):
    run = await client.get_run(run_id)
    return run if run.status == status else None


async def test_list_runs_filters_and_sorts_newest_first(nats_url):
    worker = _hello_worker(nats_url)
    async with (
        running_engine(nats_url),
        running_worker(worker),
        connected_client(nats_url) as client,
    ):
        await client.register_workflow(EXAMPLES / "hello-world.json")
        ids = []
        for name in ["A", "B", "C"]:
            run_id = await client.start_run("hello-world", name)
            await client.wait(run_id, timeout=20)
            ids.append(run_id)
        runs = await eventually(lambda: _listed(client, 3))
    assert [r.run_id for r in runs] == list(reversed(ids))
    assert json.dumps(runs[0].public_dict())


async def _listed(client, count):
    runs = await client.list_runs(workflow="hello-world", status="completed")
    return runs if len(runs) == count else None


async def test_start_runs_starts_many_runs_pipelined(nats_url):
    worker = _hello_worker(nats_url)
    async with (
        running_engine(nats_url),
        running_worker(worker),
        connected_client(nats_url) as client,
    ):
        await client.register_workflow(EXAMPLES / "hello-world.json")
        names = [f"n{i}" for i in range(50)]
        run_ids = await client.start_runs("hello-world", names, chunk_size=16)
        outputs = [await client.wait(run_id, timeout=30) for run_id in run_ids]
    assert len(set(run_ids)) == 50
    assert outputs == [f"HELLO, {name.upper()}!" for name in names]


async def test_a_new_engine_consumer_does_not_redo_old_runs(nats_url, nc):
    """A deleted (or never created) engine consumer must not re-dispatch old tasks."""
    worker = _hello_worker(nats_url)
    async with running_worker(worker), connected_client(nats_url) as client:
        await client.register_workflow(EXAMPLES / "hello-world.json")
        async with running_engine(nats_url):
            assert await client.run("hello-world", "Old", timeout=30) == "HELLO, OLD!"
        js = nc.jetstream()
        await js.delete_consumer("WORKFLOW_HISTORY", "engine")
        async with running_engine(nats_url):
            assert await client.run("hello-world", "New", timeout=30) == "HELLO, NEW!"
            runs = await client.list_runs(workflow="hello-world")
        info = await js.stream_info("TASK_QUEUES")
    assert info.state.messages == 0
    assert sorted(r.output for r in runs) == ["HELLO, NEW!", "HELLO, OLD!"]
    assert all(r.steps["greet"].attempts == 1 for r in runs)
