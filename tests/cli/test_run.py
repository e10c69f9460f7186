"""``dagnats run``: start, wait, watch, inspect and cancel runs on a real engine."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from click.testing import CliRunner, Result

from dagnats import PermanentFailure, TaskContext, Worker
from dagnats.cli import cli
from dagnats.cli.errors import EXIT_BAD_INPUT, EXIT_OK, EXIT_RUN_FAILED
from dagnats.cli.run import parse_input
from dagnats.client import Client
from dagnats.errors import InputError
from dagnats.natsio import free_port
from dagnats.testing import eventually, running_engine, running_worker

WORKFLOWS = {
    # One step each: echo returns its input, boom fails for good, and
    # nobody serves "unserved" so that run stays running until cancelled.
    "echo-flow": "echo",
    "boom-flow": "boom",
    "idle-flow": "unserved",
}


@pytest.fixture
async def app(nats_url: str) -> AsyncIterator[list[str]]:
    """Engine and worker running, workflows registered; the ``--nats-url`` args."""
    worker = Worker(nats_url, ack_wait=5.0)

    @worker.task("echo")
    def echo(ctx: TaskContext, value: Any) -> Any:
        return value

    @worker.task("boom")
    def boom(ctx: TaskContext, value: Any) -> Any:
        raise PermanentFailure(f"cannot handle {value!r}")

    async with Client(nats_url) as client:
        for name, task in WORKFLOWS.items():
            steps = [{"id": "only", "task": task}]
            await client.register_workflow({"name": name, "steps": steps})
    async with running_engine(nats_url), running_worker(worker):
        yield ["--nats-url", nats_url]


async def invoke(*args: str, stdin: str | None = None) -> Result:
    """The CLI in a thread: its asyncio.run must not meet the test's loop."""
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), stdin)


async def status_of(url: list[str], run_id: str) -> str:
    result = await invoke("run", "status", run_id, "--json", *url)
    return str(json.loads(result.stdout)["status"])


# --- start -----------------------------------------------------------------------


async def test_start_prints_the_run_id_and_status_json_shows_the_run(app):
    started = await invoke("run", "start", "echo-flow", '{"n": 1}', *app)
    run_id = started.stdout.strip()

    shown = await invoke("run", "status", run_id, "--json", *app)

    assert started.exit_code == EXIT_OK, started.stderr
    run = json.loads(shown.stdout)
    assert run["run_id"] == run_id
    assert (run["workflow"], run["input"]) == ("echo-flow", {"n": 1})
    assert {"status", "output", "error", "created_at", "steps"} <= set(run)


async def test_start_json_prints_an_object_with_the_run_id(app):
    result = await invoke("run", "start", "echo-flow", "--json", *app)

    assert result.exit_code == EXIT_OK, result.stderr
    assert set(json.loads(result.stdout)) == {"run_id"}


async def test_wait_prints_exactly_the_output_json(app):
    value = {"name": "Zoë", "tags": [1, 2.5, None]}
    text = json.dumps(value)

    result = await invoke("run", "start", "echo-flow", text, "--wait", *app)

    assert result.exit_code == EXIT_OK, result.stderr
    assert result.stdout == json.dumps(value, ensure_ascii=False) + "\n"


async def test_input_may_come_from_a_file_or_stdin(app, tmp_path):
    path = tmp_path / "input.json"
    path.write_text('["from", "file"]')

    start = ["run", "start", "echo-flow"]

    from_file = await invoke(*start, f"@{path}", "--wait", *app)
    from_stdin = await invoke(*start, "-", "--wait", *app, stdin="7")
    absent = await invoke(*start, "--wait", *app)

    assert from_file.stdout == '["from", "file"]\n'
    assert from_stdin.stdout == "7\n"
    assert absent.stdout == "null\n"


async def test_watch_prints_events_on_stderr_then_the_output(app):
    result = await invoke("run", "start", "echo-flow", '"hi"', "--watch", *app)

    assert result.exit_code == EXIT_OK, result.stderr
    assert result.stdout == '"hi"\n'
    kinds = [line.split()[2] for line in result.stderr.splitlines()]
    assert kinds[0] == "workflow.started"
    assert "step.completed" in kinds
    assert kinds[-1] == "workflow.completed"


async def test_wait_on_a_failed_run_exits_1_with_the_error_on_stderr(app):
    result = await invoke("run", "start", "boom-flow", '"x"', "--wait", *app)

    assert result.exit_code == EXIT_RUN_FAILED
    assert result.stdout == ""
    assert "failed" in result.stderr
    assert "cannot handle 'x'" in result.stderr


async def test_json_wait_on_a_failed_run_prints_the_run_and_exits_1(app):
    result = await invoke("run", "start", "boom-flow", '"x"', "--wait", "--json", *app)

    assert result.exit_code == EXIT_RUN_FAILED
    run = json.loads(result.stdout)
    assert run["status"] == "failed"
    assert "cannot handle 'x'" in run["error"]["message"]
    assert run["steps"]["only"]["status"] == "failed"


async def test_watch_on_a_failed_run_exits_1(app):
    result = await invoke("run", "start", "boom-flow", "--watch", *app)

    assert result.exit_code == EXIT_RUN_FAILED
    assert "workflow.failed" in result.stderr


async def test_wait_that_times_out_exits_1_naming_the_run(app):
    result = await invoke(
        "run", "start", "idle-flow", "--wait", "--timeout", "0.3", *app
    )

    assert result.exit_code == EXIT_RUN_FAILED
    assert "did not finish within 0.3 s" in result.stderr


async def test_timeout_without_wait_is_a_usage_error():
    result = await invoke("run", "start", "echo-flow", "--timeout", "1")

    assert result.exit_code == EXIT_BAD_INPUT
    assert "--timeout needs --wait or --watch" in result.stderr


async def test_input_larger_than_nats_accepts_exits_2(app, tmp_path):
    path = tmp_path / "big.json"
    path.write_text(json.dumps("x" * (2 << 20)))

    result = await invoke("run", "start", "echo-flow", f"@{path}", *app)

    assert result.exit_code == EXIT_BAD_INPUT
    assert "too large" in result.stderr


async def test_unreadable_input_file_exits_2(tmp_path):
    result = await invoke("run", "start", "echo-flow", f"@{tmp_path / 'absent.json'}")

    assert result.exit_code == EXIT_BAD_INPUT
    assert "cannot read input file" in result.stderr


def test_parse_input_reads_json_text_files_and_stdin(tmp_path, monkeypatch):
    path = tmp_path / "in.json"
    path.write_text('{"a": 1}')
    monkeypatch.setattr("sys.stdin", io.StringIO("[true]"))

    assert parse_input(None) is None
    assert parse_input('"Alice"') == "Alice"
    assert parse_input(f"@{path}") == {"a": 1}
    assert parse_input("-") == [True]
    with pytest.raises(InputError, match="INPUT is not JSON"):
        parse_input("Alice")


# --- inspect and cancel ----------------------------------------------------------


async def test_list_filters_and_puts_the_newest_first(app):
    first = await invoke("run", "start", "echo-flow", "1", "--wait", "--json", *app)
    second = await invoke("run", "start", "echo-flow", "2", "--wait", "--json", *app)
    await invoke("run", "start", "boom-flow", "3", "--wait", *app)

    echoes = await invoke("run", "list", "--workflow", "echo-flow", "--json", *app)
    failed = await invoke("run", "list", "--status", "failed", "--json", *app)
    table = await invoke("run", "list", *app)

    ids = [json.loads(r.stdout)["run_id"] for r in (second, first)]
    assert [r["run_id"] for r in json.loads(echoes.stdout)] == ids
    assert [r["input"] for r in json.loads(failed.stdout)] == [3]
    for run_id in ids:
        assert run_id in table.stdout


async def test_list_refuses_an_unknown_status():
    result = await invoke("run", "list", "--status", "exploded")

    assert result.exit_code == EXIT_BAD_INPUT


async def test_events_as_table_and_as_json(app):
    started = await invoke("run", "start", "echo-flow", '"e"', "--wait", "--json", *app)
    run_id = json.loads(started.stdout)["run_id"]

    table = await invoke("run", "events", run_id, *app)
    as_json = await invoke("run", "events", run_id, "--json", *app)

    events = json.loads(as_json.stdout)
    assert events[0]["type"] == "workflow.started"
    assert events[-1]["type"] == "workflow.completed"
    assert all(e["run_id"] == run_id for e in events)
    for event in events:
        assert event["type"] in table.stdout


async def test_output_prints_the_output_of_a_completed_run(app):
    started = await invoke("run", "start", "echo-flow", "[1]", "--wait", "--json", *app)
    run_id = json.loads(started.stdout)["run_id"]

    result = await invoke("run", "output", run_id, *app)

    assert (result.exit_code, result.stdout) == (EXIT_OK, "[1]\n")


async def test_cancel_ends_a_running_run_and_then_has_nothing_to_do(app):
    run_id = (await invoke("run", "start", "idle-flow", *app)).stdout.strip()

    first = await invoke("run", "cancel", run_id, *app)
    await eventually(lambda: _is_cancelled(app, run_id), timeout_s=10)
    again = await invoke("run", "cancel", run_id, "--json", *app)
    output = await invoke("run", "output", run_id, *app)

    assert first.stdout == f"cancel requested for run {run_id}\n"
    assert json.loads(again.stdout) == {"run_id": run_id, "cancel_requested": False}
    assert output.exit_code == EXIT_RUN_FAILED
    assert "is cancelled" in output.stderr


async def _is_cancelled(url: list[str], run_id: str) -> bool:
    return await status_of(url, run_id) == "cancelled"


@pytest.mark.parametrize("command", ["status", "output", "events", "cancel"])
async def test_an_unknown_run_id_exits_2(app, command):
    result = await invoke("run", command, "no-such-run", *app)

    assert result.exit_code == EXIT_BAD_INPUT
    assert "run 'no-such-run' not found" in result.stderr


async def test_unknown_workflow_exits_2_even_with_wait(app):
    result = await invoke("run", "start", "nowhere", "--wait", *app)

    assert result.exit_code == EXIT_BAD_INPUT
    assert "'nowhere' is not registered" in result.stderr


async def test_dead_nats_url_exits_3_naming_it():
    url = f"nats://127.0.0.1:{free_port()}"

    result = await invoke("run", "list", "--nats-url", url)

    assert result.exit_code == 3
    assert url in result.stderr
