"""The ``dagnats`` command as a user drives it: exit codes, messages, processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from dagnats.cli import cli
from dagnats.cli.errors import EXIT_BAD_INPUT, EXIT_NATS_UNAVAILABLE, EXIT_OK
from dagnats.natsio import free_port
from dagnats.testing import eventually

ROOT = Path(__file__).resolve().parents[2]
HELLO_WORLD = ROOT / "examples" / "workflows" / "hello-world.json"

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="PDEATHSIG and /proc are Linux-only"
)


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


# --- serve and the end-to-end path ---------------------------------------------

SERVING = re.compile(r"^dagnats serving nats=(nats://\S+) http=(http://\S+)$")


@dataclass(frozen=True, slots=True)
class Serving:
    """A running ``dagnats serve`` subprocess and where it listens."""

    proc: asyncio.subprocess.Process
    nats_url: str
    http_url: str
    data_dir: Path


def first_line(path: Path) -> str:
    """The first complete line of ``path``, or ``""`` while there is none."""
    text = path.read_text() if path.exists() else ""
    return text.split("\n", 1)[0] if "\n" in text else ""


def is_gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie awaiting its reaper counts)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


def nats_server_children(pid: int) -> list[int]:
    """Pids of the nats-server processes that ``pid`` started."""
    found = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):  # a thread or child may exit meanwhile
            for child in children.read_text().split():
                comm = Path(f"/proc/{child}/comm").read_text().strip()
                if comm == "nats-server":
                    found.append(int(child))
    return found


def kill_if_ours(pid: int, marker: str) -> None:
    """SIGKILL ``pid`` if it is still a nats-server started with ``marker``."""
    if is_gone(pid):
        return
    with contextlib.suppress(OSError):
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if b"nats-server" in cmdline and marker.encode() in cmdline:
            os.kill(pid, signal.SIGKILL)


async def spawn(args: list[str], log: Path, **env: str) -> asyncio.subprocess.Process:
    """Start ``python -m dagnats ARGS`` with stdout in ``log``, stderr beside it."""
    with log.open("wb") as out, log.with_suffix(".err").open("wb") as err:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "dagnats",
            *args,
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=err,
        )


async def stop(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM ``proc``, SIGKILL it if it has not exited within 10 s."""
    if proc.returncode is None:
        proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), 10)
    except TimeoutError:
        proc.kill()
        await asyncio.wait_for(proc.wait(), 10)


@contextlib.asynccontextmanager
async def serving(tmp_path: Path) -> AsyncIterator[Serving]:
    """``dagnats serve`` on free ports, stopped at exit with its nats-server."""
    data_dir = tmp_path / "data"
    log = tmp_path / "serve.log"
    args = ["serve", "--nats-port", "0", "--http-port", "0", "--data-dir"]
    proc = await spawn([*args, str(data_dir)], log)
    children: list[int] = []
    try:
        await eventually(
            lambda: first_line(log) or proc.returncode is not None, timeout_s=20
        )
        match = SERVING.match(first_line(log))
        assert match, f"serve did not start: {log.with_suffix('.err').read_text()}"
        children = nats_server_children(proc.pid)
        yield Serving(proc, match[1], match[2], data_dir)
    finally:
        await stop(proc)
        for pid in children:
            kill_if_ours(pid, str(data_dir))


def get(url: str) -> tuple[int, str]:
    """Status and body of ``GET url``."""
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode()


@linux_only
async def test_serve_answers_health_and_exits_0_on_sigterm(tmp_path):
    async with serving(tmp_path) as serve:
        [server_pid] = nats_server_children(serve.proc.pid)
        status, body = await asyncio.to_thread(get, f"{serve.http_url}/health")

        serve.proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(serve.proc.wait(), 15)

    assert (status, body) == (200, "ok\n")
    assert code == EXIT_OK
    assert is_gone(server_pid)


@linux_only
async def test_serve_killed_with_sigkill_leaves_no_nats_server(tmp_path):
    async with serving(tmp_path) as serve:
        [server_pid] = nats_server_children(serve.proc.pid)

        serve.proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(serve.proc.wait(), 10)

        await eventually(lambda: is_gone(server_pid), timeout_s=10)


async def test_hello_world_end_to_end_through_the_cli(tmp_path):
    async with serving(tmp_path) as serve:
        worker = await spawn(
            ["worker", "examples.hello_world:worker"],
            tmp_path / "worker.log",
            NATS_URL=serve.nats_url,
        )
        try:
            url = ["--nats-url", serve.nats_url]
            registered = await run_cli("workflow", "register", str(HELLO_WORLD), *url)
            start = ["run", "start", "hello-world"]
            wait = ["--wait", "--timeout", "30", *url]
            alice = await run_cli(*start, '"Alice"', *wait)
            bob = await run_cli(*start, '"Bob"', *wait, "--json")
            assert bob[0] == EXIT_OK, bob[2]
            bob_id = json.loads(bob[1])["run_id"]
            listed = await run_cli("run", "list", "--json", *url)
            output = await run_cli("run", "output", bob_id, *url)
            events = await run_cli("run", "events", bob_id, "--json", *url)
        finally:
            await stop(worker)

    assert registered[0] == EXIT_OK, registered[2]
    assert alice == (EXIT_OK, '"HELLO, ALICE!"\n', "")
    assert_completed_run_json(bob, bob_id)
    assert_runs_newest_first(listed, bob_id)
    assert output == (EXIT_OK, '"HELLO, BOB!"\n', "")
    assert_events_json(events)


def assert_completed_run_json(result: tuple[int, str, str], run_id: str) -> None:
    code, out, _ = result
    assert code == EXIT_OK
    assert out.count("\n") == 1
    run = json.loads(out)
    assert {"run_id", "workflow", "input", "output", "error", "created_at"} <= set(run)
    assert run["run_id"] == run_id
    assert run["workflow"] == "hello-world"
    assert run["status"] == "completed"
    assert (run["input"], run["output"], run["error"]) == ("Bob", "HELLO, BOB!", None)
    assert set(run["steps"]) == {"greet", "uppercase"}
    for step_info in run["steps"].values():
        assert {"status", "attempts", "output", "error"} <= set(step_info)
        assert (step_info["status"], step_info["attempts"]) == ("completed", 1)
        assert step_info["error"] is None
    assert run["steps"]["greet"]["output"] == "Hello, Bob!"
    assert run["steps"]["uppercase"]["output"] == "HELLO, BOB!"


def assert_runs_newest_first(result: tuple[int, str, str], newest_id: str) -> None:
    code, out, _ = result
    assert code == EXIT_OK
    runs = json.loads(out)
    assert [r["input"] for r in runs] == ["Bob", "Alice"]
    assert runs[0]["run_id"] == newest_id
    assert runs[0]["created_at"] > runs[1]["created_at"]


def assert_events_json(result: tuple[int, str, str]) -> None:
    code, out, _ = result
    assert code == EXIT_OK
    kinds = [event["type"] for event in json.loads(out)]
    assert kinds[0] == "workflow.started"
    assert kinds[-1] == "workflow.completed"
