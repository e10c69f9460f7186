"""The Worker: pulls tasks of the types it handles and runs their handlers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from dagnats.errors import ConfigurationError
from dagnats.natsio import connect, ensure_resources
from dagnats.protocol import CHECKPOINTS_BUCKET, TASK_STREAM, consumer_name, task_filter
from dagnats.worker.execution import Execution
from dagnats.worker.handler import Handler, HandlerFunc, make_handler
from dagnats.worker.slots import Slots
from dagnats.worker.watchdog import LoopWatchdog

logger = logging.getLogger(__name__)

# Backstop only: the worker enforces each message's own budget, derived from
# its step's retry policy, before running it (see Execution.run).
_CONSUMER_MAX_DELIVER = 1000
_IDLE_POLL_S = 5.0
_BUSY_POLL_S = 0.02
_MAX_BACKOFF_S = 5.0


class Worker:
    """Runs handlers for task types; start several for more throughput.

    ``max_in_flight`` bounds the tasks run at once; the worker never fetches
    more messages than it has free slots, so no message waits in a client
    buffer while its lease runs out. ``ack_wait`` is the lease (seconds or
    timedelta); heartbeats renew it every ``ack_wait / 3`` while a handler
    runs. On ``stop()`` the worker stops fetching and waits up to
    ``drain_timeout`` for running tasks; unfinished ones are left to
    redelivery, never acknowledged.
    """

    def __init__(
        self,
        nats_url: str | None = None,
        *,
        max_in_flight: int = 16,
        ack_wait: float | timedelta = 30.0,
        drain_timeout: float | timedelta = 30.0,
        worker_id: str | None = None,
    ) -> None:
        if max_in_flight < 1:
            raise ConfigurationError(
                f"max_in_flight must be at least 1, got {max_in_flight}"
            )
        self.nats_url = nats_url
        self.max_in_flight = max_in_flight
        self.ack_wait_s = _seconds(ack_wait)
        self.drain_timeout_s = _seconds(drain_timeout)
        if self.ack_wait_s <= 0:
            raise ConfigurationError(f"ack_wait must be positive, got {ack_wait!r}")
        self.worker_id = worker_id or f"worker-{secrets.token_hex(8)}"
        self._handlers: dict[str, Handler] = {}
        self._nc: NatsClient | None = None
        self._own_connection = False
        self._execution: Execution | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._slots = Slots(max_in_flight)
        self._fetchers: list[asyncio.Task[None]] = []
        self._subs: dict[str, Any] = {}
        self._inflight: set[asyncio.Task[None]] = set()
        self._notice_sub: Any = None
        self._stopping = False
        self.watchdog: LoopWatchdog | None = None

    def configure(
        self,
        *,
        nats_url: str | None = None,
        max_in_flight: int | None = None,
        ack_wait: float | timedelta | None = None,
        drain_timeout: float | timedelta | None = None,
    ) -> None:
        """Override settings before ``start()`` (``None`` keeps the current one)."""
        if self._nc is not None:
            raise ConfigurationError("configure() must be called before start()")
        if nats_url is not None:
            self.nats_url = nats_url
        if max_in_flight is not None:
            if max_in_flight < 1:
                raise ConfigurationError(
                    f"max_in_flight must be at least 1, got {max_in_flight}"
                )
            self.max_in_flight = max_in_flight
            self._slots = Slots(max_in_flight)
        if ack_wait is not None:
            if _seconds(ack_wait) <= 0:
                raise ConfigurationError(f"ack_wait must be positive, got {ack_wait!r}")
            self.ack_wait_s = _seconds(ack_wait)
        if drain_timeout is not None:
            self.drain_timeout_s = _seconds(drain_timeout)

    # --- registration --------------------------------------------------------

    def task(
        self,
        name: str,
        *,
        ack_wait: float | timedelta | None = None,
        auto_heartbeat: bool = True,
    ) -> Callable[[HandlerFunc], HandlerFunc]:
        """Decorator registering a handler for task type ``name``."""

        def decorate(func: HandlerFunc) -> HandlerFunc:
            self.register(name, func, ack_wait=ack_wait, auto_heartbeat=auto_heartbeat)
            return func

        return decorate

    def register(
        self,
        name: str,
        func: HandlerFunc,
        *,
        ack_wait: float | timedelta | None = None,
        auto_heartbeat: bool = True,
    ) -> None:
        """Register ``func`` as the handler of task type ``name``.

        Raises:
            ConfigurationError: the name is taken or the signature is wrong.
        """
        if name in self._handlers:
            raise ConfigurationError(
                f"task {name!r} already has a handler on this worker"
            )
        self._handlers[name] = make_handler(
            name, func, ack_wait=ack_wait, auto_heartbeat=auto_heartbeat
        )

    @property
    def task_types(self) -> list[str]:
        """The task types this worker handles."""
        return sorted(self._handlers)

    @property
    def in_flight(self) -> int:
        """Tasks running right now."""
        return len(self._inflight)

    # --- lifecycle -------------------------------------------------------------

    async def start(self, nc: NatsClient | None = None) -> None:
        """Connect (unless ``nc`` is given), create consumers, start fetching.

        Raises:
            ConfigurationError: no handler is registered.
            NatsUnavailableError: NATS cannot be reached.
        """
        if not self._handlers:
            raise ConfigurationError("register at least one handler before start()")
        self._own_connection = nc is None
        self._nc = nc or await connect(self.nats_url, name=self.worker_id)
        js = self._nc.jetstream()
        await ensure_resources(js)
        self._executor = ThreadPoolExecutor(
            max_workers=self.max_in_flight, thread_name_prefix="dagnats-handler"
        )
        checkpoints = await js.key_value(CHECKPOINTS_BUCKET)
        self._execution = Execution(
            self._nc, self.worker_id, self._executor, self.ack_wait_s, checkpoints
        )
        self._notice_sub = await self._nc.subscribe(
            "dagnats.notice.*", cb=self._on_notice
        )
        self.watchdog = LoopWatchdog(min(1.0, self.ack_wait_s / 3), self._running_async)
        self.watchdog.start(asyncio.get_running_loop())
        for handler in self._handlers.values():
            await self._ensure_consumer(handler)
            task = asyncio.create_task(
                self._fetch_loop(handler), name=f"fetch-{handler.task}"
            )
            self._fetchers.append(task)
        logger.info(
            "worker started worker_id=%s tasks=%s max_in_flight=%d",
            self.worker_id,
            ",".join(self.task_types),
            self.max_in_flight,
        )

    async def stop(self) -> None:
        """Stop fetching, drain running tasks, then disconnect."""
        if self._stopping:
            return
        self._stopping = True
        if self.watchdog is not None:
            self.watchdog.stop()
        for task in self._fetchers:
            task.cancel()
        for task in self._fetchers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # Without interest, the server stops handing us messages through pull
        # requests still open for the cancelled fetches; a message released
        # below then goes straight to another worker.
        for pull_sub in self._subs.values():
            with contextlib.suppress(NatsError):
                await pull_sub.unsubscribe()
        self._subs.clear()
        await self._drain()
        if self._notice_sub is not None:
            with contextlib.suppress(NatsError):
                await self._notice_sub.unsubscribe()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        if self._own_connection and self._nc is not None:
            # Everything of ours is finished: close rather than drain, so an
            # idle pull request cannot hold the shutdown.
            with contextlib.suppress(NatsError):
                await self._nc.close()
        logger.info("worker stopped worker_id=%s", self.worker_id)

    def run(self) -> None:
        """Run until SIGTERM or SIGINT (blocking), then drain and exit."""
        asyncio.run(self._run_until_signal())

    async def _run_until_signal(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        await stop.wait()
        logger.info(
            "worker draining worker_id=%s in_flight=%d", self.worker_id, self.in_flight
        )
        await self.stop()

    async def _drain(self) -> None:
        if not self._inflight:
            return
        _, pending = await asyncio.wait(
            set(self._inflight), timeout=self.drain_timeout_s
        )
        if not pending:
            return
        logger.warning(
            "drain timeout, leaving tasks to redelivery worker_id=%s tasks=%d",
            self.worker_id,
            len(pending),
        )
        assert self._execution is not None
        for entry in list(self._execution.running.values()):
            await entry.lease.release()
            entry.ctx._cancel()
            if entry.task is not None:
                entry.task.cancel()
        await asyncio.wait(pending, timeout=5.0)

    # --- consuming -------------------------------------------------------------

    async def _ensure_consumer(self, handler: Handler) -> None:
        assert self._nc is not None
        config = ConsumerConfig(
            durable_name=consumer_name(handler.task),
            name=consumer_name(handler.task),
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            filter_subject=task_filter(handler.task),
            ack_wait=handler.ack_wait_s or self.ack_wait_s,
            max_deliver=_CONSUMER_MAX_DELIVER,
            max_ack_pending=10_000,
        )
        js = self._nc.jetstream()
        await self._warn_on_lease_change(handler, config.ack_wait or 0.0)
        await js.add_consumer(TASK_STREAM, config=config)

    async def _warn_on_lease_change(self, handler: Handler, ack_wait_s: float) -> None:
        """Workers of one task type share one consumer, hence one AckWait."""
        assert self._nc is not None
        try:
            info = await self._nc.jetstream().consumer_info(
                TASK_STREAM, consumer_name(handler.task)
            )
        except NotFoundError:
            return
        current = float(info.config.ack_wait or 0.0)
        if abs(current - ack_wait_s) > 1e-3:
            logger.warning(
                "task AckWait changed for every worker of this type task=%s "
                "from_s=%g to_s=%g; give all its workers the same ack_wait",
                handler.task,
                current,
                ack_wait_s,
            )

    async def _fetch_loop(self, handler: Handler) -> None:
        try:
            await self._fetch_forever(handler)
        except asyncio.CancelledError:
            raise
        except Exception:
            # Supervision boundary: log loudly; stop() still drains what runs.
            logger.critical("fetch loop crashed task=%s", handler.task, exc_info=True)
            raise

    async def _fetch_forever(self, handler: Handler) -> None:
        sub = self._subs[handler.task] = await self._bind(handler)
        backoff = 0.1
        idle = True
        while not self._stopping:
            # Idle: hold one slot for the long poll, so other task types
            # keep theirs; busy: take every free slot for one batch.
            batch = await self._slots.take(1 if idle else self.max_in_flight)
            try:
                msgs = await self._fetch(sub, batch, idle)
            except TimeoutError:
                msgs = []
            except NatsError as exc:
                logger.warning("fetch failed task=%s error=%r", handler.task, exc)
                msgs = []
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_S)
                sub = self._subs[handler.task] = await self._rebind(handler, sub)
            else:
                backoff = 0.1
            if batch > len(msgs):
                self._slots.give_back(batch - len(msgs))
            idle = not msgs
            for msg in msgs:
                self._spawn(handler, msg)

    async def _fetch(self, sub: Any, batch: int, idle: bool) -> list[Msg]:
        if idle or batch == 1:
            # A lone message must not wait for a full batch: long-poll for one.
            return list(await sub.fetch(1, timeout=_IDLE_POLL_S))
        return list(await sub.fetch(batch, timeout=_BUSY_POLL_S))

    def _spawn(self, handler: Handler, msg: Msg) -> None:
        assert self._execution is not None
        task = asyncio.create_task(self._execution.run(handler, msg))
        self._inflight.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._slots.give_back()
        if not task.cancelled() and task.exception() is not None:
            logger.error("task execution crashed", exc_info=task.exception())

    async def _bind(self, handler: Handler) -> Any:
        assert self._nc is not None
        return await self._nc.jetstream().pull_subscribe_bind(
            durable=consumer_name(handler.task), stream=TASK_STREAM
        )

    async def _rebind(self, handler: Handler, sub: Any) -> Any:
        try:
            await self._ensure_consumer(handler)
            with contextlib.suppress(NatsError):
                await sub.unsubscribe()
            return await self._bind(handler)
        except (NatsError, TimeoutError) as exc:
            logger.warning("consumer not ready yet task=%s error=%r", handler.task, exc)
            return sub

    def _running_async(self) -> list[str]:
        """``run_id/step_id#attempt`` of the async handlers running now."""
        if self._execution is None:
            return []
        return [
            f"{e.ctx.run_id}/{e.ctx.step_id}#{e.ctx.attempt}"
            for e in list(self._execution.running.values())
            if self._handlers[e.ctx.task].is_async
        ]

    async def _on_notice(self, msg: Msg) -> None:
        if self._execution is None:
            return
        try:
            notice = json.loads(msg.data)
            task_id, attempt = str(notice["task_id"]), int(notice["attempt"])
        except (ValueError, KeyError, TypeError):
            return
        self._execution.supersede(task_id, attempt, str(notice.get("reason", "")))


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
