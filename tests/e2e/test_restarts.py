"""NATS restarts under a running run; workers stopped with SIGTERM drain."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path

from tests.e2e.processes import handler_log, kill, spawn

from dagnats import TaskContext, Worker, Workflow
from dagnats.testing import (
    connected_client,
    event_kinds,
    eventually,
    running_engine,
    running_worker,
)


async def test_nats_restarted_mid_run_loses_nothing(nats_server):
    url = nats_server.url
    release = asyncio.Event()
    worker = Worker(url, ack_wait=5)

    @worker.task("step")
    async def step(ctx: TaskContext) -> str:
        if ctx.step_id == "b":
            await release.wait()
        return f"{ctx.input}>{ctx.step_id}"

    defn = (
        Workflow("survive")
        .task("a", "step")
        .task("b", "step", depends_on=["a"])
        .build()
    )
    async with (
        running_engine(url),
        running_worker(worker),
        connected_client(url) as client,
    ):
        await client.register_workflow(defn)
        run_id = await client.start_run("survive", "in")
        await eventually(lambda: _step_running(client, run_id, "b"))

        await nats_server.stop()
        await nats_server.start()  # same port, same file storage
        release.set()

        output = await client.wait(run_id, timeout=60)
        kinds = await event_kinds(client, run_id)
    assert output == "in>a>b"
    assert kinds.count("step.completed") == 2
    assert kinds.count("workflow.completed") == 1


async def _step_running(client, run_id, step_id):
    run = await client.get_run(run_id)
    return run.steps[step_id].status == "running"


def _spawn_worker(
    url: str, tmp_path: Path, drain_timeout: float
) -> subprocess.Popen[bytes]:
    args = [
        "worker",
        "tests.e2e.workers:draining",
        "--drain-timeout",
        str(drain_timeout),
    ]
    return spawn(args, url, tmp_path)


async def test_sigterm_lets_the_running_task_finish_within_the_drain_timeout(
    nats_url, tmp_path
):
    proc = _spawn_worker(nats_url, tmp_path, drain_timeout=15)
    try:
        async with running_engine(nats_url), connected_client(nats_url) as client:
            await client.register_workflow(
                Workflow("drain").task("s", "two-seconds").build()
            )
            run_id = await client.start_run("drain")
            await eventually(lambda: len(handler_log(tmp_path)) == 1, timeout_s=30)
            proc.send_signal(signal.SIGTERM)
            output = await client.wait(run_id, timeout=30)
            code = await asyncio.to_thread(proc.wait, 20)
            kinds = await event_kinds(client, run_id)
    finally:
        kill(proc)
    assert code == 0
    assert output == {"retry_count": 0, "pid": proc.pid}
    assert [entry["phase"] for entry in handler_log(tmp_path)] == ["start", "end"]
    assert kinds.count("step.started") == 1


async def test_a_task_longer_than_the_drain_timeout_completes_on_another_worker(
    nats_url, tmp_path
):
    first = _spawn_worker(nats_url, tmp_path, drain_timeout=0.2)
    second = None
    try:
        async with running_engine(nats_url), connected_client(nats_url) as client:
            await client.register_workflow(
                Workflow("handover").task("s", "two-seconds").build()
            )
            run_id = await client.start_run("handover")
            await eventually(lambda: len(handler_log(tmp_path)) == 1, timeout_s=30)
            first.send_signal(signal.SIGTERM)
            await asyncio.to_thread(first.wait, 20)
            second = _spawn_worker(nats_url, tmp_path, drain_timeout=15)
            output = await client.wait(run_id, timeout=60)
            kinds = await event_kinds(client, run_id)
    finally:
        kill(first)
        if second is not None:
            kill(second)
    assert output == {"retry_count": 1, "pid": second.pid}
    assert kinds.count("step.completed") == 1
