"""TaskContext: what a handler sees of its task and how it reports an outcome."""

from __future__ import annotations

import asyncio
import json
import threading
import traceback as tb
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from dagnats.errors import TaskAlreadyResolvedError
from dagnats.protocol import ErrorInfo, FailureKind, TaskPayload, checkpoint_key
from dagnats.worker.lease import Lease
from dagnats.worker.streaming import ChunkPublisher

_BRIDGE_TIMEOUT_S = 30.0
_MAX_PAUSE_S = 86_400.0


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an attempt ended, as the handler reported it."""

    completed: bool
    output: Any = None
    error: ErrorInfo | None = None
    failure: FailureKind = FailureKind.RETRIABLE
    retry_after_ms: int | None = None
    pause_name: str = ""
    pause_s: float = 0.0

    @property
    def is_pause(self) -> bool:
        """True when the handler deferred itself with ``pause``."""
        return bool(self.pause_name)


def error_info(error: BaseException | str) -> ErrorInfo:
    """An :class:`ErrorInfo` from an exception (with traceback) or a message."""
    if isinstance(error, str):
        return ErrorInfo(type="Error", message=error)
    trace = "".join(tb.format_exception(type(error), error, error.__traceback__))
    return ErrorInfo(type=type(error).__name__, message=str(error), traceback=trace)


class TaskContext:
    """The handler's view of one attempt of one step.

    A handler completes the step by returning a value (or calling
    :meth:`complete`); it fails it by raising, or with :meth:`fail`,
    :meth:`fail_permanent` or :meth:`fail_retry_after`. The outcome is
    published when the handler returns. Resolving twice raises
    :class:`~dagnats.errors.TaskAlreadyResolvedError`.
    """

    def __init__(
        self,
        payload: TaskPayload,
        retry_count: int,
        worker_id: str,
        lease: Lease,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        checkpoints: KeyValue | None = None,
        chunks: ChunkPublisher | None = None,
    ) -> None:
        self._payload = payload
        self._retry_count = retry_count
        self._worker_id = worker_id
        self._lease = lease
        self._loop = loop
        self._checkpoints = checkpoints
        self._chunks = chunks
        self._lock = threading.Lock()
        self._outcome: Outcome | None = None
        self._cancelled = threading.Event()

    @property
    def input(self) -> Any:
        """The step's input, decoded from JSON."""
        return self._payload.input

    @property
    def run_id(self) -> str:
        """Id of the run this step belongs to."""
        return self._payload.run_id

    @property
    def step_id(self) -> str:
        """Id of the step in its workflow."""
        return self._payload.step_id

    @property
    def task(self) -> str:
        """The task type (the name the handler is registered under)."""
        return self._payload.task

    @property
    def task_id(self) -> str:
        """Identity of this dispatch of the step."""
        return self._payload.task_id

    @property
    def workflow(self) -> str:
        """Name of the workflow."""
        return self._payload.workflow

    @property
    def metadata(self) -> dict[str, str]:
        """The step's static ``metadata`` from the workflow file."""
        return dict(self._payload.metadata or {})

    @property
    def retry_count(self) -> int:
        """0 on the first execution, one more on every retry or redelivery."""
        return self._retry_count

    @property
    def attempt(self) -> int:
        """``retry_count + 1``."""
        return self._retry_count + 1

    @property
    def worker_id(self) -> str:
        """Id of the worker running this attempt."""
        return self._worker_id

    @property
    def resumed_from(self) -> str:
        """The name passed to :meth:`pause` by the execution this one resumes."""
        return self._payload.resumed_from

    @property
    def cancelled(self) -> bool:
        """True once the attempt is superseded or past its deadline.

        Sync handlers should poll it in long loops and return early.
        """
        return self._cancelled.is_set()

    @property
    def is_resolved(self) -> bool:
        """True once an outcome was reported."""
        return self._outcome is not None

    @property
    def outcome(self) -> Outcome | None:
        """The outcome reported so far."""
        return self._outcome

    def heartbeat(self) -> None:
        """Renew the lease so a long task is not redelivered.

        Cheap and non-blocking; calls within 100 ms are coalesced.

        Raises:
            TaskAlreadyResolvedError: called after the task was resolved.
            LeaseLostError: the attempt was superseded, or NATS has been
                unreachable for longer than the AckWait.
        """
        self._lease.heartbeat()

    def put_stream(self, chunk: Any) -> None:
        """Publish a piece of output (bytes, text or any JSON value) as it is made.

        Never blocks: chunks are stored in order in the background and all
        of them before the step's result. Readers get them with
        ``Client.stream`` or ``dagnats run logs``.

        Raises:
            ValueError: the chunk is over 512 KiB (split it, or store large
                data elsewhere and stream a reference).
            TypeError: the value is not bytes, text or JSON.
            ChunkBacklogError: too many chunks are still waiting to be stored.
            TaskAlreadyResolvedError: the task was already resolved.
        """
        if self._chunks is None:
            raise RuntimeError("put_stream() is only available inside a running worker")
        self._chunks.put(chunk)

    def complete(self, output: Any = None) -> None:
        """Complete the step with ``output`` (any JSON value).

        Raises:
            TaskAlreadyResolvedError: the task was already resolved.
        """
        self._resolve(Outcome(completed=True, output=output))

    def fail(self, error: BaseException | str) -> None:
        """Fail this attempt; the retry policy decides what follows."""
        self._resolve(Outcome(completed=False, error=error_info(error)))

    def fail_permanent(self, error: BaseException | str) -> None:
        """Fail the step without retries (dead letter, then ``on_failure``)."""
        outcome = Outcome(False, error=error_info(error), failure=FailureKind.PERMANENT)
        self._resolve(outcome)

    def fail_retry_after(
        self, error: BaseException | str, delay: float | timedelta
    ) -> None:
        """Fail this attempt and retry after ``delay`` (clamped to 100 ms … 1 h)."""
        seconds = (
            delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
        )
        if seconds <= 0:
            raise ValueError(f"delay must be positive, got {delay!r}")
        outcome = Outcome(
            False,
            error=error_info(error),
            failure=FailureKind.RETRY_AFTER,
            retry_after_ms=round(seconds * 1000),
        )
        self._resolve(outcome)

    def pause(self, name: str, delay: float | timedelta) -> None:
        """Defer the step: it runs again after ``delay`` as a new execution.

        Not a failure: ``retry_count`` stays, no retry is used, and the next
        execution gets a fresh deadline and ``resumed_from == name``. Save
        progress with :meth:`checkpoint` first; return right after calling.
        """
        seconds = (
            delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
        )
        if not name:
            raise ValueError("pause() needs a non-empty name")
        if not 0 < seconds <= _MAX_PAUSE_S:
            raise ValueError(f"pause delay must be in (0, 1 day], got {delay!r}")
        self._resolve(Outcome(False, pause_name=name, pause_s=seconds))

    def checkpoint(self, state: Any) -> Any:
        """Save ``state`` (JSON) for this step; later executions can load it.

        In async handlers ``await ctx.checkpoint(state)``; in sync handlers
        call it plainly (it blocks until stored).
        """
        body = json.dumps(state).encode()
        return self._bridge(self._put_checkpoint(body))

    def load_checkpoint(self) -> Any:
        """The last state saved by :meth:`checkpoint` for this step, or None.

        In async handlers ``await ctx.load_checkpoint()``; in sync handlers
        call it plainly.
        """
        return self._bridge(self._get_checkpoint())

    async def _put_checkpoint(self, body: bytes) -> None:
        await self._bucket().put(checkpoint_key(self.run_id, self.step_id), body)

    async def _get_checkpoint(self) -> Any:
        try:
            entry = await self._bucket().get(checkpoint_key(self.run_id, self.step_id))
        except KeyNotFoundError:
            return None
        return json.loads(entry.value) if entry.value else None

    def _bucket(self) -> KeyValue:
        if self._checkpoints is None:
            raise RuntimeError("checkpoints are only available inside a running worker")
        return self._checkpoints

    def _bridge(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """A coroutine on the worker's loop; blocking from a handler thread."""
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop:
            return coro
        return asyncio.run_coroutine_threadsafe(coro, loop).result(_BRIDGE_TIMEOUT_S)

    def _resolve(self, outcome: Outcome) -> None:
        with self._lock:
            if self._outcome is not None:
                raise TaskAlreadyResolvedError(
                    f"step {self.step_id!r} attempt {self.attempt} was already resolved"
                )
            self._outcome = outcome
        self._lease.mark_resolved()

    def _cancel(self) -> None:
        self._cancelled.set()
