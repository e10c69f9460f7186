"""``dagnats dlq list`` and ``dlq replay`` against a real run that failed."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from dagnats import RunFailedError, TaskContext, Worker, Workflow
from dagnats.testing import connected_client, running_engine, running_worker

ROOT = Path(__file__).resolve().parents[2]


async def _cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dagnats",
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_dlq_list_and_replay_through_the_cli(nats_url):
    fixed = {"value": False}
    worker = Worker(nats_url, ack_wait=5)

    @worker.task("flaky-cli")
    def flaky(ctx: TaskContext) -> str:
        if not fixed["value"]:
            raise TimeoutError("backend slow")
        return "ok now"

    defn = Workflow("dlq-cli").task("only", "flaky-cli").build()
    async with (
        running_engine(nats_url),
        running_worker(worker),
        connected_client(nats_url) as client,
    ):
        await client.register_workflow(defn)
        run_id = await client.start_run("dlq-cli")
        with pytest.raises(RunFailedError):
            await client.wait(run_id, timeout=30)

        code, out, _ = await _cli(
            "dlq", "list", "--run", run_id, "--json", "--nats-url", nats_url
        )
        assert code == 0
        [entry] = json.loads(out)
        assert {"seq", "workflow", "run_id", "step_id", "error", "attempts"} <= set(
            entry
        )
        assert (entry["workflow"], entry["run_id"], entry["step_id"]) == (
            "dlq-cli",
            run_id,
            "only",
        )
        assert entry["error"]["type"] == "TimeoutError"
        assert len(entry["attempts"]) == 1

        fixed["value"] = True
        code, out, _ = await _cli(
            "dlq", "replay", str(entry["seq"]), "--json", "--nats-url", nats_url
        )
        assert code == 0
        assert json.loads(out)["replayed"] is True
        assert await client.wait(run_id, timeout=30) == "ok now"

        code, out, _ = await _cli(
            "dlq", "replay", "--run", run_id, "--nats-url", nats_url
        )
        assert code == 0
        assert "nothing changed" in out

        code, _, err = await _cli("dlq", "replay", "999999", "--nats-url", nats_url)
        assert code == 2
        assert "999999" in err


async def test_error_text_with_brackets_is_shown_literally(nats_url):
    """Regression: error messages were read as rich markup and crashed tables."""
    worker = Worker(nats_url, ack_wait=5)

    @worker.task("markup")
    def markup(ctx: TaskContext) -> None:
        raise ValueError("bad [/red] value [bold]x")

    async with (
        running_engine(nats_url),
        running_worker(worker),
        connected_client(nats_url) as client,
    ):
        await client.register_workflow(Workflow("markup").task("m", "markup").build())
        run_id = await client.start_run("markup")
        with pytest.raises(RunFailedError):
            await client.wait(run_id, timeout=30)
        status = await _cli("run", "status", run_id, "--nats-url", nats_url)
        table = await _cli("dlq", "list", "--nats-url", nats_url)
        events = await _cli("run", "events", run_id, "--nats-url", nats_url)
        grouped = await _cli("--json", "--nats-url", nats_url, "dlq", "list")
    for code, out, _ in (status, table, events):
        assert code == 0
        assert "[/red]" in out
    assert grouped[0] == 0
    assert json.loads(grouped[1])[0]["run_id"] == run_id
