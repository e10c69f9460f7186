"""``dagnats serve`` as a process: its ready line, /health, and refusals at start."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dagnats.cli.errors import EXIT_BAD_INPUT, EXIT_OK
from dagnats.natsio import EmbeddedServer
from dagnats.testing import eventually

ROOT = Path(__file__).resolve().parents[2]

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc to find child processes"
)


@pytest.fixture
async def spawned(tmp_path: Path) -> AsyncIterator[list[asyncio.subprocess.Process]]:
    """Processes a test starts; each is stopped by its own pid at the end."""
    procs: list[asyncio.subprocess.Process] = []
    yield procs
    for proc in procs:
        if proc.returncode is None:
            proc.kill()
        await asyncio.wait_for(proc.wait(), 10)


async def serve(
    procs: list[asyncio.subprocess.Process],
    tmp_path: Path,
    *args: str,
    group: tuple[str, ...] = (),
    **env: str,
) -> asyncio.subprocess.Process:
    """Start ``python -m dagnats GROUP serve ARGS``: stdout piped, stderr to a file."""
    with (tmp_path / "serve.err").open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "dagnats",
            *group,
            "serve",
            *args,
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
        )
    procs.append(proc)
    return proc


async def ready_line(proc: asyncio.subprocess.Process) -> str:
    assert proc.stdout is not None
    return (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()


def health_status(url: str) -> int:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def child_pids(pid: int) -> list[int]:
    """Pids of the processes ``pid`` started (Linux /proc)."""
    found: list[int] = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        found += [int(child) for child in children.read_text().split()]
    return found


async def is_unhealthy(url: str) -> bool:
    return await asyncio.to_thread(health_status, url) == 503


def stderr_of(tmp_path: Path) -> str:
    return (tmp_path / "serve.err").read_text()


@linux_only
async def test_with_nats_url_it_uses_that_server_and_reports_its_loss(
    nats_server: EmbeddedServer, tmp_path, spawned
):
    args = ["--nats-url", nats_server.url, "--http-port", "0", "--json"]
    proc = await serve(spawned, tmp_path, *args)

    ready = json.loads(await ready_line(proc))
    assert ready["nats_url"] == nats_server.url
    assert await asyncio.to_thread(health_status, ready["http_url"]) == 200
    assert child_pids(proc.pid) == []  # it started no nats-server

    await nats_server.stop()
    await eventually(lambda: is_unhealthy(ready["http_url"]), timeout_s=10)
    proc.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(proc.wait(), 15) == EXIT_OK, stderr_of(tmp_path)


async def test_group_options_json_and_nats_url_apply_to_serve(
    nats_url, tmp_path, spawned
):
    group = ("--json", "--nats-url", nats_url)
    proc = await serve(spawned, tmp_path, "--http-port", "0", group=group)
    ready = json.loads(await ready_line(proc))

    proc.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(proc.wait(), 15)

    records = [json.loads(line) for line in stderr_of(tmp_path).splitlines()]
    assert code == EXIT_OK
    assert ready["nats_url"] == nats_url
    assert {"ts", "level", "logger", "message"} <= set(records[0])
    assert records[-1]["message"] == "stopped"


@linux_only
async def test_nats_url_from_the_environment_does_not_replace_the_embedded_server(
    nats_url, tmp_path, spawned
):
    args = ["--nats-port", "0", "--http-port", "0", "--data-dir", str(tmp_path / "d")]
    proc = await serve(spawned, tmp_path, *args, NATS_URL=nats_url)

    line = await ready_line(proc)
    children = child_pids(proc.pid)
    proc.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(proc.wait(), 15)

    assert line.startswith("dagnats serving nats=nats://127.0.0.1:")
    assert nats_url not in line
    assert len(children) == 1
    assert code == EXIT_OK


async def test_a_busy_http_port_exits_2_naming_it(nats_url, tmp_path, spawned):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        args = ["--nats-url", nats_url, "--http-port", str(port)]
        proc = await serve(spawned, tmp_path, *args)

        code = await asyncio.wait_for(proc.wait(), 20)

    assert code == EXIT_BAD_INPUT
    assert f"cannot listen for /health on 127.0.0.1:{port}" in stderr_of(tmp_path)
    assert "Traceback" not in stderr_of(tmp_path)


async def test_a_busy_nats_port_exits_2(nats_server: EmbeddedServer, tmp_path, spawned):
    args = ["--nats-port", str(nats_server.port), "--data-dir", str(tmp_path / "d")]
    proc = await serve(spawned, tmp_path, *args, "--http-port", "0")

    line = await ready_line(proc)
    assert line == "", "serve announced a server that is not its own"

    code = await asyncio.wait_for(proc.wait(), 20)
    assert code == EXIT_BAD_INPUT
    assert "nats-server did not start" in stderr_of(tmp_path)


@pytest.mark.parametrize("value", ["soon", "0", "-5s"])
async def test_a_bad_default_step_timeout_exits_2(tmp_path, spawned, value):
    proc = await serve(spawned, tmp_path, "--default-step-timeout", value)

    code = await asyncio.wait_for(proc.wait(), 20)

    assert code == EXIT_BAD_INPUT
    assert "--default-step-timeout" in stderr_of(tmp_path)
