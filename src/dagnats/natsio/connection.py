"""Connecting to NATS: a first connect that fails fast, then reconnects forever."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError
from nats.errors import StaleConnectionError, UnexpectedEOF

from dagnats.errors import NatsUnavailableError

logger = logging.getLogger(__name__)

DEFAULT_URL = "nats://127.0.0.1:4222"

# nats-py reads max_reconnect_attempts for the first connect too, and 0 there
# means "forever": 1 is the smallest bound (two tries, 0.5 s apart).
_FIRST_CONNECT_ATTEMPTS = 1
_RECONNECT_WAIT_S = 0.5
_DRAIN_TIMEOUT_S = 5
# Errors nats-py reports just before it starts reconnecting.
_CONNECTION_LOST = (OSError, UnexpectedEOF, StaleConnectionError)


def resolve_url(url: str | None = None) -> str:
    """``url``, else ``$NATS_URL``, else ``nats://127.0.0.1:4222``."""
    return url or os.environ.get("NATS_URL") or DEFAULT_URL


async def connect(
    url: str | None = None, *, name: str = "dagnats", connect_timeout_s: float = 5.0
) -> NatsClient:
    """Connect to NATS (see :func:`resolve_url`); once connected, reconnect forever.

    Outages are logged at WARNING with the URL, once each; the client keeps
    trying every 0.5 s, so a NATS restart never ends a worker or engine.

    Raises:
        NatsUnavailableError: the first connection failed or did not finish
            within ``connect_timeout_s`` (the message names the URL).
    """
    resolved = resolve_url(url)
    nc = NatsClient()
    log = _ConnectionLog(nc, resolved)
    try:
        async with asyncio.timeout(connect_timeout_s):
            await nc.connect(resolved, **_options(log, name, connect_timeout_s))
    except (NatsError, OSError, TimeoutError) as exc:
        await nc.close()
        raise NatsUnavailableError(
            resolved, log.failure(exc, connect_timeout_s)
        ) from exc

    # Unbounded from now on: the option is read at every reconnect attempt.
    nc.options["max_reconnect_attempts"] = -1
    log.connected = True
    logger.debug("nats connected url=%s name=%s", resolved, name)
    return nc


def _options(log: _ConnectionLog, name: str, timeout_s: float) -> dict[str, Any]:
    """Keyword arguments of ``Client.connect`` (its int hints are too narrow)."""
    return {
        "name": name,
        "connect_timeout": timeout_s,
        "allow_reconnect": True,
        "max_reconnect_attempts": _FIRST_CONNECT_ATTEMPTS,
        "reconnect_time_wait": _RECONNECT_WAIT_S,
        "drain_timeout": _DRAIN_TIMEOUT_S,
        "disconnected_cb": log.on_disconnect,
        "reconnected_cb": log.on_reconnect,
        "error_cb": log.on_error,
    }


class _ConnectionLog:
    """Logs one client's outages once each, with its URL."""

    def __init__(self, nc: NatsClient, url: str) -> None:
        self.nc = nc
        self.url = url
        self.connected = False
        self.last_error: Exception | None = None

    def failure(self, exc: BaseException, timeout_s: float) -> str:
        """Why the first connect failed, for the error message."""
        cause = self.last_error or exc
        if isinstance(cause, TimeoutError):
            return f"no answer within {timeout_s:g} s"
        text = str(cause)
        return f"{type(cause).__name__}: {text}" if text else type(cause).__name__

    async def on_disconnect(self) -> None:
        if not self.connected or self.nc.is_closed or self.nc.is_draining:
            return  # a failed first try, or a deliberate close: not an outage
        logger.warning("nats disconnected, reconnecting url=%s", self.url)

    async def on_reconnect(self) -> None:
        logger.info("nats reconnected url=%s", self.url)

    async def on_error(self, exc: Exception) -> None:
        self.last_error = exc
        # Failures of the first connect end in NatsUnavailableError; a lost
        # connection is told by the disconnect WARNING that follows, once.
        if not self.connected:
            logger.debug("nats connect attempt failed url=%s error=%r", self.url, exc)
        elif self.nc.is_reconnecting:
            logger.debug("nats reconnect attempt failed url=%s error=%r", self.url, exc)
        elif isinstance(exc, _CONNECTION_LOST):
            logger.debug("nats connection lost url=%s error=%r", self.url, exc)
        else:
            logger.warning("nats client error url=%s error=%r", self.url, exc)
