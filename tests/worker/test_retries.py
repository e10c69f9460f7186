"""Retry policies, dead letters, replay and on_failure, end to end."""

from __future__ import annotations

import time

import pytest

from dagnats import RunFailedError, TaskContext, Worker, parse_workflow
from dagnats.testing import (
    connected_client,
    event_kinds,
    eventually,
    running_engine,
    running_worker,
)

ACK_WAIT_S = 2.0


def _policy_workflow(name: str, on_failure: bool = False):
    steps = [
        {
            "id": "fetch",
            "task": f"{name}-fetch",
            "retry": {
                "max_attempts": 2,
                "strategy": "exponential",
                "initial_delay": "200ms",
                "multiplier": 2.0,
            },
        },
        {"id": "process", "task": f"{name}-process", "depends_on": ["fetch"]},
    ]
    if on_failure:
        steps[0]["on_failure"] = "report"
        steps.append({"id": "report", "task": f"{name}-report"})
    return parse_workflow({"name": name, "steps": steps})


async def test_retries_follow_the_policy_then_dead_letter_then_replay_completes(
    nats_url,
):
    calls: list[tuple[int, float]] = []
    fixed = {"value": False}
    worker = Worker(nats_url, ack_wait=ACK_WAIT_S)

    @worker.task("r-fetch")
    def fetch(ctx: TaskContext) -> str:
        calls.append((ctx.retry_count, time.monotonic()))
        if not fixed["value"]:
            raise ConnectionError("upstream down")
        return "data"

    @worker.task("r-process")
    def process(ctx: TaskContext, text: str) -> str:
        return text.upper()

    defn = _policy_workflow("r")
    async with (
        running_engine(nats_url),
        running_worker(worker),
        connected_client(nats_url) as client,
    ):
        await client.register_workflow(defn)
        run_id = await client.start_run("r")
        with pytest.raises(RunFailedError) as failed:
            await client.wait(run_id, timeout=30)
        assert failed.value.error.type == "ConnectionError"

        # Three executions, spaced at least by the policy: 200 ms, then 400 ms.
        assert [count for count, _ in calls] == [0, 1, 2]
        assert calls[1][1] - calls[0][1] >= 0.2
        assert calls[2][1] - calls[1][1] >= 0.4

        [letter] = await eventually(lambda: client.dead_letters(run_id=run_id))
        assert (letter.workflow, letter.step_id) == ("r", "fetch")
        assert len(letter.attempts) == 3
        assert letter.error["type"] == "ConnectionError"
        assert all(a["worker_id"] == worker.worker_id for a in letter.attempts)
        assert all(a["started_at"] and a["ended_at"] for a in letter.attempts)

        fixed["value"] = True
        result = await client.replay_dead_letter(letter.seq)
        assert result.replayed
        assert await client.wait(run_id, timeout=30) == "DATA"
        assert calls[-1][0] == 3  # the count goes on, with no gap

        again = await client.replay_dead_letter(letter.seq)
        assert not again.replayed
        assert "completed" in again.reason
        run = await client.get_run(run_id)
    assert run.status == "completed"


async def test_on_failure_step_recovers_and_the_run_completes(nats_url):
    received: list[object] = []
    worker = Worker(nats_url, ack_wait=ACK_WAIT_S)

    @worker.task("o-fetch")
    def fetch(ctx: TaskContext) -> str:
        raise RuntimeError("always broken")

    @worker.task("o-process")
    def process(ctx: TaskContext) -> str:
        raise AssertionError("process must be skipped")

    @worker.task("o-report")
    def report(ctx: TaskContext) -> str:
        received.append(ctx.input)
        return "reported"

    defn = _policy_workflow("o", on_failure=True)
    async with (
        running_engine(nats_url),
        running_worker(worker),
        connected_client(nats_url) as client,
    ):
        await client.register_workflow(defn)
        run_id = await client.start_run("o")
        output = await client.wait(run_id, timeout=30)
        run = await eventually(lambda: _terminal(client, run_id))
        letters = await eventually(lambda: client.dead_letters(run_id=run_id))
        kinds = await event_kinds(client, run_id)
    assert received == [
        {"failed_step": "fetch", "error": "RuntimeError: always broken"}
    ]
    assert run.status == "completed"
    assert run.steps["fetch"].status == "recovered"
    assert run.steps["process"].status == "skipped"
    assert run.steps["report"].status == "completed"
    assert output is None  # the single sink, process, was skipped
    assert len(letters) == 1
    assert "step.dead_lettered" in kinds


async def _terminal(client, run_id):
    run = await client.get_run(run_id)
    return run if run.is_terminal else None


async def test_fail_permanent_skips_retries_and_retry_after_sets_the_delay(nats_url):
    calls: list[tuple[str, int, float]] = []
    worker = Worker(nats_url, ack_wait=ACK_WAIT_S)

    @worker.task("later")
    def later(ctx: TaskContext) -> str:
        calls.append(("later", ctx.retry_count, time.monotonic()))
        if ctx.retry_count == 0:
            ctx.fail_retry_after("rate limited", 0.3)
            return "ignored"
        return "ok"

    @worker.task("never")
    def never(ctx: TaskContext) -> None:
        calls.append(("never", ctx.retry_count, time.monotonic()))
        ctx.fail_permanent(ValueError("bad input"))

    defn = parse_workflow(
        {
            "name": "outcomes",
            "default_retry": {"max_attempts": 5, "initial_delay": "10s"},
            "steps": [
                {"id": "a", "task": "later"},
                {"id": "b", "task": "never", "depends_on": ["a"]},
            ],
        }
    )
    async with (
        running_engine(nats_url),
        running_worker(worker),
        connected_client(nats_url) as client,
    ):
        await client.register_workflow(defn)
        run_id = await client.start_run("outcomes")
        with pytest.raises(RunFailedError) as failed:
            await client.wait(run_id, timeout=30)
    later_calls = [c for c in calls if c[0] == "later"]
    assert [c[1] for c in later_calls] == [0, 1]
    assert later_calls[1][2] - later_calls[0][2] >= 0.3
    assert [c[1] for c in calls if c[0] == "never"] == [0]
    assert failed.value.error.type == "ValueError"
