"""Run one task message: lease, handler, deadline, outcome, confirmed ack."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js.kv import KeyValue
from pydantic import ValidationError

from dagnats.protocol import (
    MSG_ID_HEADER,
    ErrorInfo,
    FailureKind,
    StepCompleted,
    StepFailed,
    StepPaused,
    StepStarted,
    TaskPayload,
    encode_event,
    encode_token,
    history_subject,
)
from dagnats.worker.context import Outcome, TaskContext, error_info
from dagnats.worker.handler import Handler
from dagnats.worker.lease import Lease
from dagnats.worker.outcomes import PermanentFailure, RetryAfter
from dagnats.worker.streaming import ChunkPublisher

logger = logging.getLogger(__name__)

_PUBLISH_TRIES = 5
# Room for headers and the engine's own record of the result.
_EVENT_HEADROOM_BYTES = 4096


@dataclass(slots=True)
class Running:
    """An attempt in flight on this worker."""

    ctx: TaskContext
    lease: Lease
    chunks: ChunkPublisher
    task: asyncio.Task[object] | None = None
    started: float = field(default_factory=time.monotonic)


class Execution:
    """Everything needed to run messages of one worker."""

    def __init__(
        self,
        nc: NatsClient,
        worker_id: str,
        executor: Executor,
        ack_wait_s: float,
        checkpoints: KeyValue | None = None,
    ) -> None:
        self._nc = nc
        self._checkpoints = checkpoints
        self._js = nc.jetstream()
        self._worker_id = worker_id
        self._executor = executor
        self._default_ack_wait_s = ack_wait_s
        self.running: dict[tuple[str, int], Running] = {}

    def supersede(self, task_id: str, attempt: int, reason: str) -> None:
        """Stop the attempt the engine superseded (if it runs here)."""
        entry = self.running.get((task_id, attempt))
        if entry is None:
            return
        logger.warning(
            "attempt superseded run_id=%s step_id=%s attempt=%d reason=%s",
            entry.ctx.run_id,
            entry.ctx.step_id,
            attempt + 1,
            reason,
        )
        entry.lease.mark_lost(reason)
        entry.ctx._cancel()
        if entry.task is not None:
            entry.task.cancel()

    async def run(self, handler: Handler, msg: Msg) -> None:
        """Run ``msg`` with ``handler``; acks only after the outcome is stored."""
        try:
            payload = TaskPayload.model_validate_json(msg.data)
        except ValidationError as exc:
            await self._dead_letter_poison(handler.task, msg, exc)
            return
        retry_count = payload.retry_count + msg.metadata.num_delivered - 1
        if retry_count > payload.max_retry_count:
            await self._report_leases_exhausted(payload, retry_count, msg)
            return

        ack_wait_s = handler.ack_wait_s or self._default_ack_wait_s
        loop = asyncio.get_running_loop()
        lease = Lease(msg, self._nc, loop, ack_wait_s)
        chunks = ChunkPublisher(
            self._nc,
            payload.run_id,
            payload.step_id,
            retry_count,
            loop,
            dispatch=payload.dispatch,
        )
        ctx = TaskContext(
            payload,
            retry_count,
            self._worker_id,
            lease,
            loop=loop,
            checkpoints=self._checkpoints,
            chunks=chunks,
        )
        entry = Running(ctx, lease, chunks)
        key = (payload.task_id, retry_count)
        self.running[key] = entry
        try:
            await self._run_attempt(handler, msg, payload, entry, ack_wait_s)
        finally:
            self.running.pop(key, None)
            await chunks.close()

    async def _run_attempt(
        self,
        handler: Handler,
        msg: Msg,
        payload: TaskPayload,
        entry: Running,
        ack_wait_s: float,
    ) -> None:
        ctx = entry.ctx
        started = StepStarted(
            run_id=payload.run_id,
            step_id=payload.step_id,
            attempt=ctx.retry_count,
            worker_id=self._worker_id,
            task_id=payload.task_id,
        )
        # Pipelined: the handler starts while step.started is being stored;
        # the result is published only after it (same subject, same order).
        started_stored = asyncio.create_task(self._publish(started))
        beats = None
        if handler.auto_heartbeat:
            beats = asyncio.create_task(_auto_heartbeat(entry.lease, ack_wait_s / 3))
        try:
            outcome = await self._outcome_of(handler, entry, payload.timeout_s)
        finally:
            entry.lease.mark_resolved()
            if beats is not None:
                beats.cancel()
        if not await started_stored or entry.lease.is_lost:
            # Not recorded as started (NATS down), or superseded: the engine
            # ignores this attempt's result, and an ack could remove the copy
            # another worker now runs. Redelivery decides what happens next.
            return
        # Every chunk is stored before the result, so a reader that sees the
        # result has seen all of the attempt's output (DESIGN §5).
        await entry.chunks.close()
        await self._resolve(payload, ctx, outcome, msg)

    async def _outcome_of(
        self, handler: Handler, entry: Running, timeout_s: float
    ) -> Outcome:
        ctx = entry.ctx
        entry.task = asyncio.create_task(handler.invoke(ctx, self._executor))
        done, _ = await asyncio.wait({entry.task}, timeout=timeout_s)
        if not done:
            ctx._cancel()
            entry.task.cancel()
            error = ErrorInfo(
                type="StepTimeout",
                message=f"attempt exceeded its timeout of {timeout_s:g} s",
            )
            return Outcome(False, error=error, failure=FailureKind.TIMEOUT)
        try:
            output = entry.task.result()
        except asyncio.CancelledError:
            return Outcome(
                False, error=ErrorInfo(type="Cancelled", message="superseded")
            )
        except PermanentFailure as exc:
            return Outcome(False, error=error_info(exc), failure=FailureKind.PERMANENT)
        except RetryAfter as exc:
            retry_ms = round(exc.delay_s * 1000)
            return Outcome(
                False,
                error=error_info(exc),
                failure=FailureKind.RETRY_AFTER,
                retry_after_ms=retry_ms,
            )
        except Exception as exc:  # noqa: BLE001 - supervision boundary
            # A handler that crashes never crashes the worker (SPEC Part A 9).
            logger.info(
                "handler raised run_id=%s step_id=%s attempt=%d error=%s",
                ctx.run_id,
                ctx.step_id,
                ctx.attempt,
                type(exc).__name__,
            )
            return Outcome(False, error=error_info(exc))
        return ctx.outcome or Outcome(True, output=output)

    async def _resolve(
        self, payload: TaskPayload, ctx: TaskContext, outcome: Outcome, msg: Msg
    ) -> None:
        common = {
            "run_id": payload.run_id,
            "step_id": payload.step_id,
            "attempt": ctx.retry_count,
            "worker_id": self._worker_id,
            "task_id": payload.task_id,
        }
        event: StepCompleted | StepFailed | StepPaused
        if outcome.completed:
            event = StepCompleted(**common, output=outcome.output)
        elif outcome.is_pause:
            resume_at = time.time() + outcome.pause_s
            event = StepPaused(
                **common,
                dispatch=payload.dispatch,
                name=outcome.pause_name,
                resume_at=resume_at,
            )
        else:
            assert outcome.error is not None
            event = StepFailed(
                **common,
                error=outcome.error,
                failure=outcome.failure,
                retry_after_ms=outcome.retry_after_ms,
            )
        event = self._storable(event, common)
        if not await self._publish(event):
            return  # not stored: leave the message for redelivery (DESIGN §3.2)
        try:
            await msg.ack_sync(timeout=5.0)
        except (NatsError, TimeoutError) as exc:
            # The outcome is stored; a redelivery produces a duplicate result
            # that the engine records as ignored.
            logger.warning(
                "ack not confirmed run_id=%s step_id=%s error=%r",
                ctx.run_id,
                ctx.step_id,
                exc,
            )

    def _storable(
        self, event: StepCompleted | StepFailed | StepPaused, common: dict[str, Any]
    ) -> StepCompleted | StepFailed | StepPaused:
        """``event``, or a permanent failure when it cannot be stored at all.

        An output too large for one NATS message, or too deeply nested to
        encode, fails the step at once (retrying cannot help).
        """
        limit = self._nc.max_payload - _EVENT_HEADROOM_BYTES
        try:
            size = len(encode_event(event))
        except (ValueError, RecursionError) as exc:
            message = f"the result cannot be encoded as JSON: {exc}"
            return _unstorable(common, "OutputNotSerializable", message)
        if size <= limit:
            return event
        message = (
            f"the result is {size} bytes and one NATS message holds at most {limit}; "
            "store large data elsewhere (object store, S3) and return a reference"
        )
        return _unstorable(common, "OutputTooLarge", message)

    async def _publish(
        self, event: StepStarted | StepCompleted | StepFailed | StepPaused
    ) -> bool:
        body = encode_event(event)
        headers = {MSG_ID_HEADER: event.msg_id}
        delay = 0.2
        for attempt in range(_PUBLISH_TRIES):
            try:
                await self._js.publish(
                    history_subject(event.run_id), body, headers=headers
                )
                return True
            except (NatsError, TimeoutError) as exc:
                logger.warning(
                    "event publish failed run_id=%s step_id=%s kind=%s try=%d error=%r",
                    event.run_id,
                    event.step_id,
                    event.type,
                    attempt + 1,
                    exc,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
        return False

    async def _report_leases_exhausted(
        self, payload: TaskPayload, retry_count: int, msg: Msg
    ) -> None:
        error = ErrorInfo(
            type="LeaseLost",
            message=f"lease lost on {retry_count - payload.retry_count} deliveries; "
            "no retry left for lost leases",
        )
        event = StepFailed(
            run_id=payload.run_id,
            step_id=payload.step_id,
            attempt=retry_count,
            worker_id=self._worker_id,
            task_id=payload.task_id,
            error=error,
            failure=FailureKind.LEASE_LOST,
        )
        if await self._publish(event):
            with contextlib.suppress(NatsError, TimeoutError):
                await msg.ack_sync(timeout=5.0)

    async def _dead_letter_poison(self, task: str, msg: Msg, exc: Exception) -> None:
        logger.warning(
            "undecodable task payload dead-lettered task=%s bytes=%d",
            task,
            len(msg.data),
        )
        seq = msg.metadata.sequence.stream
        headers = {
            MSG_ID_HEADER: f"dlq.invalid.{seq}",
            "Dagnats-Error": str(exc).replace("\n", " ")[:512],
            "Dagnats-Task": task,
        }
        subject = f"dead._invalid.{encode_token(task)}"
        try:
            await self._js.publish(subject, msg.data, headers=headers)
        except (NatsError, TimeoutError):
            return  # not stored: let it come back rather than lose it
        with contextlib.suppress(NatsError, TimeoutError):
            await msg.ack_sync(timeout=5.0)


def _unstorable(common: dict[str, Any], kind: str, message: str) -> StepFailed:
    error = ErrorInfo(type=kind, message=message)
    return StepFailed(**common, error=error, failure=FailureKind.PERMANENT)


async def _auto_heartbeat(lease: Lease, interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        if lease.is_lost:
            return
        with contextlib.suppress(Exception):
            lease.heartbeat(force=True)
