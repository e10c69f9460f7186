"""``dagnats serve`` and ``dagnats worker``: the long-running processes."""

from __future__ import annotations

import asyncio
import importlib
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import click

from dagnats.cli import output
from dagnats.cli.errors import handles_errors, run_async
from dagnats.cli.health import HealthServer
from dagnats.dag import Limits
from dagnats.engine import Engine
from dagnats.errors import ConfigurationError
from dagnats.natsio import EmbeddedServer, connect, default_data_dir
from dagnats.protocol import to_nanoseconds
from dagnats.worker import Worker

logger = logging.getLogger(__name__)


def _seconds(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return to_nanoseconds(text) / 1e9


@click.command()
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="JetStream storage (default: the user data dir).",
)
@click.option(
    "--nats-port",
    type=int,
    default=4222,
    show_default=True,
    help="Port of the embedded NATS server; 0 picks a free one.",
)
@click.option(
    "--nats-url",
    default=None,
    help="Use this NATS server or cluster instead of starting one.",
)
@click.option("--http-host", default="127.0.0.1", show_default=True)
@click.option(
    "--http-port",
    type=int,
    default=8080,
    show_default=True,
    help="Port for /health; 0 picks a free one.",
)
@click.option(
    "--default-step-timeout",
    default="1h",
    show_default=True,
    help="Timeout of steps whose file sets none.",
)
@handles_errors
def serve(
    data_dir: Path | None,
    nats_port: int,
    nats_url: str | None,
    http_host: str,
    http_port: int,
    default_step_timeout: str,
) -> None:
    """Run the embedded NATS server, the engine and /health until stopped."""
    try:
        timeout_s = _seconds(default_step_timeout)
    except ValueError as exc:
        raise ConfigurationError(f"--default-step-timeout: {exc}") from exc
    limits = Limits(default_step_timeout_s=timeout_s)
    run_async(_serve(data_dir, nats_port, nats_url, http_host, http_port, limits))


async def _serve(
    data_dir: Path | None,
    nats_port: int,
    nats_url: str | None,
    http_host: str,
    http_port: int,
    limits: Limits,
) -> None:
    server = None
    if nats_url is None:
        server = EmbeddedServer(data_dir or default_data_dir(), port=nats_port)
        await server.start()
        nats_url = server.url
    try:
        nc = await connect(nats_url, name="dagnats-serve")
        engine = Engine(nc, limits=limits)
        await engine.start()
        health = HealthServer(lambda: nc.is_connected, http_host, http_port)
        await health.start()
        output.line(
            f"dagnats serving nats={nats_url} http=http://{health.host}:{health.port}"
        )
        await _until_signal()
        logger.info("shutting down")
        await health.stop()
        await engine.stop()
        await nc.drain()
    finally:
        if server is not None:
            await server.stop()


async def _until_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


@click.command()
@click.argument("target")
@click.option("--nats-url", envvar="NATS_URL", default=None, help="NATS server URL.")
@click.option("--max-in-flight", type=int, default=None, help="Tasks run at once.")
@click.option("--ack-wait", type=float, default=None, help="Lease in seconds.")
@click.option(
    "--drain-timeout",
    type=float,
    default=None,
    help="Seconds to finish tasks on SIGTERM.",
)
@handles_errors
def worker(
    target: str,
    nats_url: str | None,
    max_in_flight: int | None,
    ack_wait: float | None,
    drain_timeout: float | None,
) -> None:
    """Run the Worker object named by TARGET (``module:attribute``)."""
    found = load_worker(target)
    found.configure(
        nats_url=nats_url,
        max_in_flight=max_in_flight,
        ack_wait=ack_wait,
        drain_timeout=drain_timeout,
    )
    found.run()


def load_worker(target: str) -> Worker:
    """Import ``module:attribute`` and return the Worker it names.

    Raises:
        ConfigurationError: the target cannot be imported or is no Worker.
    """
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise ConfigurationError(
            f"worker target {target!r} must look like 'module:attribute'"
        )
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"cannot import {module_name!r}: {exc}") from exc
    found: Any = getattr(module, attribute, None)
    if found is None:
        raise ConfigurationError(
            f"module {module_name!r} has no attribute {attribute!r}"
        )
    if not isinstance(found, Worker) and callable(found):
        found = found()
    if not isinstance(found, Worker):
        raise ConfigurationError(
            f"{target!r} is a {type(found).__name__}, not a dagnats Worker"
        )
    return found
