"""The shared DagNats workflow files run unchanged with the project's workers."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from dagnats.testing import connected_client, eventually, running_engine, running_worker

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "examples"


def _fresh_worker(module_name: str, url: str):
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    module = importlib.reload(importlib.import_module(module_name))
    module.worker.configure(nats_url=url, ack_wait=5)
    return module.worker


async def test_hello_world_file_gives_hello_alice(nats_url):
    worker = _fresh_worker("examples.hello_world", nats_url)
    async with (
        running_engine(nats_url),
        running_worker(worker),
        connected_client(nats_url) as client,
    ):
        await client.register_workflow(SHARED / "hello-world.json")
        assert await client.run("hello-world", "Alice", timeout=30) == "HELLO, ALICE!"


async def test_retry_errors_file_retries_fetch_then_completes(nats_url):
    worker = _fresh_worker("examples.retry_errors", nats_url)
    async with (
        running_engine(nats_url),
        running_worker(worker),
        connected_client(nats_url) as client,
    ):
        await client.register_workflow(SHARED / "retry-errors.json")
        run_id = await client.start_run("retry-errors", "order-7")
        output = await client.wait(run_id, timeout=60)
        run = await client.get_run(run_id)
    assert output == "DATA FOR ORDER-7"
    assert run.steps["fetch"].attempts == 3
    assert (
        run.steps["report-error"].status == "pending"
    )  # an aux step never runs by itself


async def test_retry_errors_file_always_failing_recovers_through_on_failure(
    nats_url, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("ALWAYS_FAIL", "1")
    worker = _fresh_worker("examples.retry_errors", nats_url)
    async with (
        running_engine(nats_url),
        running_worker(worker),
        connected_client(nats_url) as client,
    ):
        await client.register_workflow(SHARED / "retry-errors.json")
        run_id = await client.start_run("retry-errors", "order-8")
        await client.wait(run_id, timeout=60)
        run = await eventually(lambda: _terminal(client, run_id))
        letters = await client.dead_letters(run_id=run_id)
    assert run.status == "completed"
    assert run.steps["fetch"].status == "recovered"
    assert run.steps["fetch"].attempts == 4  # max_attempts 3 counts retries
    assert run.steps["process"].status == "skipped"
    assert run.steps["report-error"].output.startswith("reported failure of fetch")
    assert len(letters) == 1
    assert len(letters[0].attempts) == 4


async def _terminal(client, run_id):
    run = await client.get_run(run_id)
    return run if run.is_terminal else None


@pytest.mark.parametrize(
    "name",
    [
        "agent-loop.json",
        "cron-trigger.json",
        "http-respond.json",
        "map-step.json",
        "payment-flow.json",
        "signals.json",
        "sub-workflow.json",
    ],
)
async def test_other_shared_files_register_or_say_what_is_not_supported_yet(
    nats_url, name
):
    from dagnats.errors import WorkflowValidationError

    async with connected_client(nats_url) as client:
        problems = []
        try:
            await client.register_workflow(SHARED / name)
        except WorkflowValidationError as exc:
            problems = exc.problems
    assert all("not supported yet" in p.message for p in problems), problems
