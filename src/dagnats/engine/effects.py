"""Carry out the pure core's actions on NATS: tasks, records, dead letters."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from dagnats.dag import (
    Action,
    DeadLetter,
    DispatchTask,
    RecordEvent,
    RunState,
    SupersedeAttempt,
)
from dagnats.dag.snapshot import run_to_dict
from dagnats.engine.sizes import fits, truncated
from dagnats.protocol import (
    KIND_HEADER,
    MSG_ID_HEADER,
    TASK_STREAM,
    ErrorInfo,
    Event,
    FailureKind,
    StepDeadLettered,
    StepDispatched,
    StepFailed,
    TaskPayload,
    dead_letter_subject,
    encode_event,
    encode_token,
    history_subject,
    notice_subject,
    task_subject,
)

logger = logging.getLogger(__name__)

_HEADROOM_BYTES = 4096


def _input_too_large(
    run: RunState, action: DispatchTask, size: int, limit: int
) -> StepFailed:
    """The step fails for good: its input can never travel in one message."""
    error = ErrorInfo(
        type="TaskInputTooLarge",
        message=(
            f"the task for step {action.step_id!r} is {size} bytes and one NATS "
            f"message holds at most {limit}; pass a reference (a URL or object key) "
            "between steps instead of the data"
        ),
    )
    return StepFailed(
        run_id=run.run_id,
        step_id=action.step_id,
        attempt=action.retry_count,
        error=error,
        failure=FailureKind.PERMANENT,
    )


class Effects:
    """Publishes what the engine decided, each with a deterministic message id."""

    def __init__(self, nc: NatsClient, js: JetStreamContext) -> None:
        self._nc = nc
        self._js = js
        self._limit = nc.max_payload - _HEADROOM_BYTES

    async def perform_batch(self, batch: list[tuple[RunState, list[Action]]]) -> None:
        """Carry out the actions of several runs; raises if NATS refuses one.

        Publishes are pipelined: each run's actions are sent in order without
        waiting for one acknowledgement before the next, then the records
        that need a stored sequence (``step.dispatched``, ``step.dead_lettered``)
        follow.
        """
        await asyncio.gather(
            *(self._perform_run(run, acts) for run, acts in batch if acts)
        )

    async def _perform_run(self, run: RunState, actions: list[Action]) -> None:
        followups = await asyncio.gather(*(self._primary(run, a) for a in actions))
        await asyncio.gather(
            *(self.publish_event(e) for e in followups if e is not None)
        )

    async def _primary(self, run: RunState, action: Action) -> Event | None:
        if isinstance(action, DispatchTask):
            return await self._dispatch(run, action)
        if isinstance(action, RecordEvent):
            await self.publish_event(action.event)
        elif isinstance(action, DeadLetter):
            return await self._dead_letter(run, action)
        elif isinstance(action, SupersedeAttempt):
            await self._supersede(run, action)
        return None

    async def publish_event(self, event: Any) -> int:
        """Append ``event`` to its run's history; returns the stream sequence.

        A record whose ``output`` would not fit in one message carries a
        marker instead (the value stays in the worker's own event).
        """
        body = encode_event(event)
        if not fits(body, self._limit) and getattr(event, "output", None) is not None:
            body = encode_event(
                event.model_copy(update={"output": truncated(event.output)})
            )
        ack = await self._js.publish(
            history_subject(event.run_id),
            body,
            headers={MSG_ID_HEADER: event.msg_id, KIND_HEADER: event.type.value},
        )
        return int(ack.seq)

    async def _dispatch(
        self, run: RunState, action: DispatchTask
    ) -> StepDispatched | StepFailed:
        now = time.time()
        payload = TaskPayload(
            run_id=run.run_id,
            step_id=action.step_id,
            task=action.task,
            workflow=run.workflow.name,
            input=action.input,
            retry_count=action.retry_count,
            max_retry_count=action.max_retry_count,
            timeout_s=action.timeout_s,
            dispatch=action.dispatch,
            resumed_from=action.resumed_from,
            dispatched_at=now,
            metadata=action.metadata,
        )
        step_token = encode_token(action.step_id)
        msg_id = (
            f"{run.run_id}.{step_token}.{action.retry_count}.{action.dispatch}.task"
        )
        body = payload.model_dump_json().encode()
        if not fits(body, self._limit):
            return _input_too_large(run, action, len(body), self._limit)
        ack = await self._js.publish(
            task_subject(action.task, run.run_id), body, headers={MSG_ID_HEADER: msg_id}
        )
        logger.debug(
            "task dispatched run_id=%s step_id=%s attempt=%d seq=%d",
            run.run_id,
            action.step_id,
            action.retry_count + 1,
            ack.seq,
        )
        record = StepDispatched(
            run_id=run.run_id,
            step_id=action.step_id,
            attempt=action.retry_count,
            ts=now,
            task=action.task,
            task_seq=int(ack.seq),
            dispatch=action.dispatch,
        )
        return record

    async def _dead_letter(self, run: RunState, action: DeadLetter) -> StepDeadLettered:
        step = run.steps[action.step_id]
        entry = {
            "workflow": run.workflow.name,
            "run_id": run.run_id,
            "step_id": action.step_id,
            "task": action.task,
            "input": action.input,
            "retry_count": action.retry_count,
            "error": action.error.model_dump(),
            "attempts": run_to_dict(run, with_definition=False)["steps"][
                action.step_id
            ]["history"],
            "dead_lettered_at": time.time(),
        }
        msg_id = f"dlq.{run.run_id}.{encode_token(action.step_id)}.{step.attempts}"
        body = json.dumps(entry).encode()
        if not fits(body, self._limit):
            body = json.dumps({**entry, "input": truncated(entry["input"])}).encode()
        ack = await self._js.publish(
            dead_letter_subject(run.workflow.name, run.run_id, action.step_id),
            body,
            headers={MSG_ID_HEADER: msg_id},
        )
        logger.warning(
            "step dead-lettered run_id=%s step_id=%s attempt=%d error=%s",
            run.run_id,
            action.step_id,
            action.retry_count + 1,
            action.error.type,
        )
        record = StepDeadLettered(
            run_id=run.run_id,
            step_id=action.step_id,
            attempt=action.retry_count,
            error=action.error,
            dead_letter_seq=int(ack.seq),
        )
        return record

    async def _supersede(self, run: RunState, action: SupersedeAttempt) -> None:
        notice = {
            "run_id": run.run_id,
            "step_id": action.step_id,
            "task_id": action.task_id,
            "attempt": action.retry_count,
            "reason": action.reason,
        }
        await self._nc.publish(notice_subject(run.run_id), json.dumps(notice).encode())
        if action.task_seq <= 0:
            return
        # NotFoundError: already acked by its worker, nothing left to drop.
        with contextlib.suppress(NotFoundError):
            await self._js.delete_msg(TASK_STREAM, action.task_seq)
