"""The lease on one task message: heartbeats (in-progress acks) and its loss."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import Error as NatsError

from dagnats.errors import LeaseLostError, TaskAlreadyResolvedError

logger = logging.getLogger(__name__)

MIN_HEARTBEAT_INTERVAL_S = 0.1


class Lease:
    """Keeps one delivery alive; every method is safe from any thread.

    ``heartbeat`` never blocks: it schedules an in-progress ack on the
    worker's event loop. Calls closer together than 100 ms are coalesced
    (the first always goes out).
    """

    def __init__(
        self,
        msg: Msg,
        nc: NatsClient,
        loop: asyncio.AbstractEventLoop,
        ack_wait_s: float,
    ) -> None:
        self._msg = msg
        self._nc = nc
        self._loop = loop
        self._ack_wait_s = ack_wait_s
        self._lock = threading.Lock()
        self._last_sent = 0.0
        self._resolved = False
        self._lost_reason = ""
        self._pending: set[asyncio.Future[None]] = set()
        self.renewed_at = time.monotonic()

    @property
    def is_lost(self) -> bool:
        """True once the engine superseded this attempt."""
        return bool(self._lost_reason)

    @property
    def lost_reason(self) -> str:
        """Why the lease is lost ('' while it is held)."""
        return self._lost_reason

    def mark_resolved(self) -> None:
        """The task was resolved; further heartbeats are programming errors."""
        with self._lock:
            self._resolved = True

    def mark_lost(self, reason: str) -> None:
        """The engine superseded this attempt; stop renewing it."""
        with self._lock:
            self._lost_reason = reason or "attempt superseded"

    async def release(self) -> None:
        """Give the message back for immediate redelivery (worker shutdown)."""
        self.mark_lost("worker stopped before the task finished")
        try:
            await self._msg.nak()
        except (NatsError, TimeoutError) as exc:
            logger.warning(
                "task not released, it returns after its AckWait error=%r", exc
            )

    def heartbeat(self, *, force: bool = False) -> None:
        """Renew the lease (JetStream in-progress ack).

        Raises:
            TaskAlreadyResolvedError: the task was already completed or failed.
            LeaseLostError: the attempt was superseded, or NATS has been
                unreachable for longer than the AckWait.
        """
        with self._lock:
            if self._resolved:
                raise TaskAlreadyResolvedError(
                    "heartbeat() after the task was resolved; heartbeats are only "
                    "valid while the handler is running"
                )
            if self._lost_reason:
                raise LeaseLostError(f"lease lost: {self._lost_reason}")
            self._check_connection()
            now = time.monotonic()
            if not force and now - self._last_sent < MIN_HEARTBEAT_INTERVAL_S:
                return
            self._last_sent = now
        self._loop.call_soon_threadsafe(self._send)

    def _check_connection(self) -> None:
        if self._nc.is_connected:
            return
        if time.monotonic() - self.renewed_at > self._ack_wait_s:
            raise LeaseLostError(
                "lease may be lost: NATS has been unreachable for longer than the "
                f"AckWait ({self._ack_wait_s:g} s); another worker may run this task"
            )

    def _send(self) -> None:
        future = asyncio.ensure_future(self._in_progress())
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)

    async def _in_progress(self) -> None:
        try:
            await self._msg.in_progress()
            self.renewed_at = time.monotonic()
        except (NatsError, TimeoutError) as exc:
            logger.warning("heartbeat not sent error=%r", exc)
