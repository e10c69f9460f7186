"""Processes and measurements shared by the scenarios."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from dagnats.natsio import EmbeddedServer

ROOT = Path(__file__).resolve().parent.parent


@contextlib.asynccontextmanager
async def fresh_server() -> AsyncIterator[EmbeddedServer]:
    """A new nats-server with empty file storage for one measurement."""
    with tempfile.TemporaryDirectory(prefix="dagnats-bench-") as data_dir:
        async with EmbeddedServer(Path(data_dir), port=0) as server:
            yield server


class Process:
    """A child process of the benchmark, stopped by its own pid."""

    def __init__(self, args: list[str], url: str, log: Path) -> None:
        env = {**os.environ, "NATS_URL": url, "PYTHONPATH": str(ROOT)}
        with log.open("ab") as out:
            self.popen = subprocess.Popen(
                [sys.executable, *args], cwd=ROOT, env=env, stdout=out, stderr=out
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def cpu_seconds(self) -> float:
        """User + system CPU time used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def peak_rss_mib(self) -> float:
        """Peak resident memory (VmHWM) in MiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)


def engine(url: str, log: Path) -> Process:
    """The engine alone, against ``url`` (as ``dagnats serve --nats-url``)."""
    return Process(
        ["-m", "dagnats", "serve", "--nats-url", url, "--http-port", "0"], url, log
    )


def worker(target: str, url: str, log: Path, *extra: str) -> Process:
    """A dagnats worker process."""
    return Process(["-m", "dagnats", "worker", target, *extra], url, log)


async def until(
    check: Callable[[], Awaitable[bool]], timeout_s: float, every_s: float = 0.02
) -> bool:
    """Poll ``check`` until true; False after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(every_s)
    return False


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` percentile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    """Median, NaN for no values."""
    return statistics.median(values) if values else float("nan")


async def drain_rate(
    js: Any, stream: str, consumer: str, total: int, timeout_s: float
) -> float:
    """Messages/s from the first delivery until ``total`` are acknowledged."""
    first: float | None = None

    async def done() -> bool:
        nonlocal first
        try:
            info = await js.consumer_info(stream, consumer)
        except Exception:  # noqa: BLE001 - the consumer may not exist yet
            return False
        if first is None and info.delivered.consumer_seq > 0:
            first = time.perf_counter()
        return bool(info.ack_floor.stream_seq >= total and info.num_ack_pending == 0)

    if not await until(done, timeout_s):
        return float("nan")
    assert first is not None
    return total / max(time.perf_counter() - first, 1e-9)
