"""The CLI's exit codes and messages: workflow files, run input, unreachable NATS."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from dagnats.cli import cli
from dagnats.cli.errors import EXIT_BAD_INPUT, EXIT_NATS_UNAVAILABLE, EXIT_OK
from dagnats.natsio import free_port

ROOT = Path(__file__).resolve().parents[2]
HELLO_WORLD = ROOT / "examples" / "workflows" / "hello-world.json"


def invoke(*args: str):
    """Run the CLI in this process; stdout and stderr are kept apart."""
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


async def run_cli(*args: str, timeout_s: float = 30.0) -> tuple[int, str, str]:
    """Run ``python -m dagnats ARGS`` to completion: exit code, stdout, stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dagnats",
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def write_workflow(tmp_path: Path, document: dict[str, object]) -> Path:
    path = tmp_path / "workflow.json"
    path.write_text(json.dumps(document))
    return path


def step(step_id: str, **fields: object) -> dict[str, object]:
    return {"id": step_id, "task": "t", **fields}


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        pytest.param(
            [step("a", depends_on=["b"]), step("b", depends_on=["a"])],
            ["$.steps", "a → b → a", "cycle"],
            id="dependency-cycle",
        ),
        pytest.param(
            [step("a", retyr=3)],
            ["$.steps[0].retyr", "unknown key 'retyr'"],
            id="unknown-key",
        ),
        pytest.param(
            [step("a", depends_on=["ghost"])],
            ["$.steps[0].depends_on[0]", "'ghost'"],
            id="unknown-dependency",
        ),
        pytest.param(
            [step("a", timeout="5 parsecs")],
            ["$.steps[0].timeout", "'5 parsecs' is not a duration"],
            id="bad-duration",
        ),
    ],
)
def test_validate_refuses_a_bad_file_naming_the_json_path(tmp_path, steps, expected):
    path = write_workflow(tmp_path, {"name": "bad", "steps": steps})

    result = invoke("workflow", "validate", str(path))

    assert result.exit_code == EXIT_BAD_INPUT
    assert result.stdout == ""
    for text in expected:
        assert text in result.stderr


def test_validate_reports_every_problem_at_once(tmp_path):
    steps = [step("a", retyr=3), step("b", timeout="5 parsecs")]
    path = write_workflow(tmp_path, {"name": "bad", "steps": steps})

    result = invoke("workflow", "validate", str(path))

    assert result.exit_code == EXIT_BAD_INPUT
    assert "$.steps[0].retyr" in result.stderr
    assert "$.steps[1].timeout" in result.stderr


def test_validate_accepts_the_hello_world_file():
    result = invoke("workflow", "validate", str(HELLO_WORLD), "--json")

    assert result.exit_code == EXIT_OK, result.stderr
    assert json.loads(result.stdout) == {
        "valid": True,
        "name": "hello-world",
        "steps": 2,
    }


def test_run_start_with_input_that_is_not_json_exits_2():
    dead_url = f"nats://127.0.0.1:{free_port()}"

    result = invoke("run", "start", "hello-world", "{oops", "--nats-url", dead_url)

    assert result.exit_code == EXIT_BAD_INPUT
    assert "INPUT is not JSON" in result.stderr


def test_run_start_against_a_dead_nats_url_exits_3_naming_it():
    dead_url = f"nats://127.0.0.1:{free_port()}"

    result = invoke("run", "start", "hello-world", '"Alice"', "--nats-url", dead_url)

    assert result.exit_code == EXIT_NATS_UNAVAILABLE
    assert dead_url in result.stderr


async def test_run_start_of_an_unregistered_workflow_exits_2(nats_url):
    code, out, err = await run_cli("run", "start", "nowhere", "--nats-url", nats_url)

    assert code == EXIT_BAD_INPUT
    assert out == ""
    assert "'nowhere' is not registered" in err
