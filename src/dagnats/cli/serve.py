"""``dagnats serve``: the embedded NATS server, the engine and ``/health``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass
from pathlib import Path

import click
from nats.aio.client import Client as NatsClient

from dagnats.cli import output
from dagnats.cli.health import HealthServer
from dagnats.cli.logconfig import configure_logging, log_level_option
from dagnats.cli.options import (
    explicit_group_nats_url,
    json_option,
    log_level,
    wants_json,
)
from dagnats.dag import Limits
from dagnats.engine import Engine
from dagnats.natsio import EmbeddedServer, connect, default_data_dir
from dagnats.protocol import to_nanoseconds

logger = logging.getLogger(__name__)

_CLOSE_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class ServeSettings:
    """What ``dagnats serve`` was asked to run."""

    data_dir: Path
    nats_port: int
    nats_url: str | None
    http_host: str
    http_port: int
    limits: Limits
    as_json: bool


def _duration_s(ctx: click.Context, param: click.Parameter, value: str) -> float:
    """Seconds from ``90``, ``1.5`` or a Go duration such as ``1h30m``."""
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = to_nanoseconds(value) / 1e9
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx, param) from exc
    if seconds <= 0:
        raise click.BadParameter(f"must be positive, got {value!r}", ctx, param)
    return seconds


@click.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="JetStream storage of the embedded server (default: the user data dir).",
)
@click.option(
    "--nats-port",
    type=click.IntRange(0, 65535),
    default=4222,
    show_default=True,
    help="Port of the embedded NATS server; 0 picks a free one.",
)
@click.option(
    "--nats-url",
    default=None,
    help="Use this NATS server instead of starting one ($NATS_URL is not read).",
)
@click.option("--http-host", default="127.0.0.1", show_default=True)
@click.option(
    "--http-port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Port for GET /health; 0 picks a free one.",
)
@click.option(
    "--default-step-timeout",
    "step_timeout_s",
    default="1h",
    show_default=True,
    callback=_duration_s,
    help="Timeout of steps whose workflow sets none (seconds or e.g. 30m).",
)
@log_level_option
@json_option
def serve(
    data_dir: Path | None,
    nats_port: int,
    nats_url: str | None,
    http_host: str,
    http_port: int,
    step_timeout_s: float,
    level: str | None,
    as_json: bool,
) -> None:
    """Run the embedded NATS server, the engine and /health until stopped.

    Prints one line once ready, ``dagnats serving nats=URL http=URL`` (with
    --json an object with nats_url and http_url; log lines become JSON too),
    then runs until SIGINT or SIGTERM and stops the engine, then the server.
    """
    as_json = wants_json(as_json)
    click.get_current_context().call_on_close(
        configure_logging(log_level(level, "INFO"), as_json=as_json)
    )
    settings = ServeSettings(
        data_dir=data_dir or default_data_dir(),
        nats_port=nats_port,
        nats_url=nats_url or explicit_group_nats_url(),
        http_host=http_host,
        http_port=http_port,
        limits=Limits(default_step_timeout_s=step_timeout_s),
        as_json=as_json,
    )
    asyncio.run(run_server(settings))


async def run_server(settings: ServeSettings) -> None:
    """Start everything, announce it, and stop it all in reverse on a signal.

    Raises:
        ConfigurationError: the NATS server or the health port cannot start.
        NatsUnavailableError: the given ``nats_url`` cannot be reached.
    """
    stop = _stop_on_signal()
    async with contextlib.AsyncExitStack() as stack:
        url = settings.nats_url or await _started_server(stack, settings)
        nc = await connect(url, name="dagnats-serve")
        stack.push_async_callback(_close, nc)

        engine = Engine(nc, limits=settings.limits)
        await engine.start()
        stack.push_async_callback(engine.stop)

        health = HealthServer(
            lambda: nc.is_connected, settings.http_host, settings.http_port
        )
        await health.start()
        stack.push_async_callback(health.stop)

        output.ready(url, health.url, settings.as_json)
        logger.info("serving nats_url=%s http_url=%s", url, health.url)
        await stop.wait()
        logger.info("shutting down")
    logger.info("stopped")


async def _started_server(
    stack: contextlib.AsyncExitStack, settings: ServeSettings
) -> str:
    """Start the embedded server (stopped last, by ``stack``); its URL."""
    server = EmbeddedServer(settings.data_dir, port=settings.nats_port)
    await server.start()
    stack.push_async_callback(server.stop)
    return server.url


async def _close(nc: NatsClient) -> None:
    # close(), not drain(): the engine has stopped, and draining its pull
    # subscriptions waits for the 30 s drain timeout of nats-py.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(nc.close(), _CLOSE_TIMEOUT_S)


def _stop_on_signal() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM (installed before anything starts)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop
