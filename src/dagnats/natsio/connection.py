"""Connecting to NATS: URL resolution and a fail-fast first connect."""

from __future__ import annotations

import logging
import os

import nats
from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError
from nats.errors import NoServersError

from dagnats.errors import NatsUnavailableError

logger = logging.getLogger(__name__)

DEFAULT_URL = "nats://127.0.0.1:4222"


def resolve_url(url: str | None = None) -> str:
    """``url``, else ``$NATS_URL``, else ``nats://127.0.0.1:4222``."""
    return url or os.environ.get("NATS_URL") or DEFAULT_URL


async def connect(
    url: str | None = None, *, name: str = "dagnats", connect_timeout_s: float = 5.0
) -> NatsClient:
    """Connect to NATS; reconnect forever afterwards.

    Raises:
        NatsUnavailableError: the first connection failed (the message names
            the URL).
    """
    resolved = resolve_url(url)
    conn: list[NatsClient] = []

    async def on_disconnect() -> None:
        if conn and (conn[0].is_closed or conn[0].is_draining):
            return  # a deliberate close, not an outage
        logger.warning("nats disconnected, reconnecting url=%s", resolved)

    async def on_reconnect() -> None:
        logger.warning("nats reconnected url=%s", resolved)

    async def on_error(exc: Exception) -> None:
        logger.debug("nats client error url=%s error=%r", resolved, exc)

    try:
        nc = await nats.connect(
            resolved,
            name=name,
            connect_timeout=connect_timeout_s,
            allow_reconnect=True,
            # Bounded for the first connect (fail fast with a clear error) ...
            max_reconnect_attempts=1,
            reconnect_time_wait=0.5,
            drain_timeout=5,
            disconnected_cb=on_disconnect,
            reconnected_cb=on_reconnect,
            error_cb=on_error,
        )
    except (NoServersError, NatsError, OSError, TimeoutError) as exc:
        raise NatsUnavailableError(resolved, type(exc).__name__) from exc
    conn.append(nc)
    # ... and unbounded once connected: a NATS restart must never end a worker.
    nc.options["max_reconnect_attempts"] = -1
    return nc
