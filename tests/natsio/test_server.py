"""The embedded nats-server: readiness, stop, restart on its data, death with parent."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import pytest
from nats.js.api import StorageType

from dagnats.natsio import EmbeddedServer, connect
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
