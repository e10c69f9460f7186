"""Reading a run's output chunks from ``STEP_OUTPUT``, in order from the first.

Chunks are read with an ephemeral pull consumer that starts at the first
stored chunk, so a reader that attaches late, or reconnects, misses nothing.
The run's history says when to stop: workers store every chunk before they
publish a step's result (DESIGN §5), so once the step (or run) has resolved,
the chunks up to the subject's last stored sequence are all there will be.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import ConnectionClosedError
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from pydantic import ValidationError

from dagnats.dag import Limits, RunState, advance
from dagnats.errors import RunNotFoundError
from dagnats.protocol import (
    HISTORY_STREAM,
    OUTPUT_STREAM,
    Event,
    StepReplayed,
    WorkflowCancelled,
    WorkflowCompleted,
    WorkflowFailed,
    decode_event,
    decode_token,
    history_subject,
    stream_subject,
)

logger = logging.getLogger(__name__)

# The headers dagnats.worker.streaming writes (this package may not import
# it); tests/worker/test_streaming.py checks that both agree.
ENCODING_HEADER = "Dagnats-Encoding"
ATTEMPT_HEADER = "Dagnats-Attempt"
CHUNK_HEADER = "Dagnats-Chunk"

_BATCH = 256
# How long one pull request waits for news; also how late a reader notices
# that its consumer was lost (it is then recreated from the next sequence).
_POLL_S = 1.0
# The server deletes a consumer nobody pulled from for this long (a reader
# that stopped iterating, or a long disconnection); it is recreated on demand.
_INACTIVE_S = 30.0
_MAX_FAILURES = 20
_MAX_BACKOFF_S = 2.0
_CLOSE_WAIT_S = 2.0
_FORBIDDEN_IN_TOKEN = frozenset(".*> \t\r\n")


@dataclass(frozen=True, slots=True)
class Chunk:
    """One output chunk of a step.

    ``attempt`` is the retry count of the attempt that sent it (0 on the
    first execution, as in events), so output of a failed attempt is never
    mixed up with the retry's. ``index`` numbers the chunks of one
    execution from 0 (-1 for a chunk sent without dagnats headers). ``data``
    is bytes, str, or the decoded JSON value, as the handler passed it.
    """

    step_id: str
    attempt: int
    index: int
    data: bytes | str | Any


async def stream_chunks(
    nc: NatsClient, run_id: str, step_id: str | None = None, *, follow: bool = True
) -> AsyncGenerator[Chunk, None]:
    """Every output chunk of a run (or of one step), in order from the first.

    With ``follow`` the iterator waits for new chunks and ends by itself
    once the step (with ``step_id=None``: the run) has resolved and every
    chunk sent before that has been yielded. Without it, it yields what is
    stored now and stops. It may wait as long as the run lasts: bound it
    with ``asyncio.timeout`` if needed, and close it (``contextlib.aclosing``)
    when leaving the loop early.

    Raises:
        RunNotFoundError: the run has no history (wrong id, or expired).
        nats.errors.Error: NATS stayed unreachable, or the connection closed.
    """
    reader = _ChunkReader(nc.jetstream(), run_id, step_id, follow=follow)
    try:
        await reader.start()
        while (batch := await reader.next_batch()) is not None:
            for msg in batch:
                chunk = _chunk_of(msg, run_id)
                if chunk is not None:
                    yield chunk
    finally:
        await reader.close()


class _ChunkReader:
    """Batches of chunk messages in stream order, until the end is known."""

    def __init__(
        self, js: JetStreamContext, run_id: str, step_id: str | None, *, follow: bool
    ) -> None:
        self._js = js
        self._run_id = run_id
        self._step_id = step_id
        self._follow = follow
        self._subject = (
            stream_subject(run_id, step_id) if step_id else f"stream.{run_id}.>"
        )
        self._chunks = _Cursor(js, OUTPUT_STREAM, self._subject)
        self._final_seq: int | None = None
        self._read: asyncio.Task[list[Msg]] | None = None
        self._end: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Check the run exists; note where to stop or start watching for it."""
        if not _is_token(self._run_id):
            raise RunNotFoundError(self._run_id)
        if not await _last_seq(self._js, HISTORY_STREAM, history_subject(self._run_id)):
            raise RunNotFoundError(self._run_id)

        if not self._follow:
            self._final_seq = await _last_seq(self._js, OUTPUT_STREAM, self._subject)
            return
        watch = _watch_end(self._js, self._run_id, self._step_id)
        self._end = asyncio.create_task(watch, name=f"chunk-end-{self._run_id}")

    async def next_batch(self) -> list[Msg] | None:
        """The next chunk messages, or None once every chunk was returned."""
        while True:
            final = self._final_seq
            if final is not None and self._chunks.next_seq > final:
                return None
            if self._read is None:
                self._read = asyncio.create_task(self._chunks.read(_POLL_S))

            waiting: set[asyncio.Future[Any]] = {self._read}
            if final is None and self._end is not None:
                waiting.add(self._end)
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)

            if final is None and self._end is not None and self._end.done():
                self._end.result()  # a failure of the watch surfaces here
                self._final_seq = await _last_seq(
                    self._js, OUTPUT_STREAM, self._subject
                )
            if not self._read.done():
                continue
            msgs = self._read.result()
            self._read = None
            kept = [m for m in msgs if self._is_before_end(m)]
            if kept:
                return kept

    def _is_before_end(self, msg: Msg) -> bool:
        final = self._final_seq
        return final is None or msg.metadata.sequence.stream <= final

    async def close(self) -> None:
        """Stop the pending read and the watch; forget the consumer."""
        tasks = {t for t in (self._read, self._end) if t is not None}
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=_CLOSE_WAIT_S)
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                # Already raised by next_batch, or moot once the other failed.
                logger.debug("chunk reader task ended with %r", task.exception())
        await self._chunks.close()


async def _watch_end(js: JetStreamContext, run_id: str, step_id: str | None) -> None:
    """Return once the run's history shows the step (or the run) resolved.

    The history that already exists is read to its end before deciding, so
    an end that happened before we attached counts, and one undone by a
    later replay does not.
    """
    history = _Cursor(js, HISTORY_STREAM, history_subject(run_id))
    known_seq = await _last_seq(js, HISTORY_STREAM, history_subject(run_id))
    resolution = _Resolution(step_id)
    try:
        while True:
            for msg in await history.read(_POLL_S):
                event = _event_of(msg)
                if event is not None:
                    resolution.apply(event)
            if history.next_seq > known_seq and resolution.is_resolved:
                return
    finally:
        await history.close()


@dataclass(slots=True)
class _Resolution:
    """Whether a step (or run) has resolved, from its run's events in order.

    The events are folded with the engine's own function, so a failure that
    will be retried, a stale result or a pause does not count as the end,
    and a replayed dead letter revives the step. A terminal record of the
    run counts too, even where this fold would not have reached it.
    """

    step_id: str | None
    state: RunState | None = None
    run_ended: bool = False

    @property
    def is_resolved(self) -> bool:
        """True once no more chunks are expected."""
        state = self.state
        if self.run_ended or (state is not None and state.status.is_terminal):
            return True
        step = state.steps.get(self.step_id) if state and self.step_id else None
        return step is not None and step.status.is_terminal

    def apply(self, event: Event) -> None:
        """Fold the next event of the run."""
        self.state = advance(self.state, event, Limits()).state
        if isinstance(event, WorkflowCompleted | WorkflowFailed | WorkflowCancelled):
            self.run_ended = True
        elif isinstance(event, StepReplayed):
            self.run_ended = False


def _event_of(msg: Msg) -> Event | None:
    """The event in ``msg`` (None, logged, if it cannot be decoded)."""
    try:
        return decode_event(msg.data)
    except ValidationError:
        logger.warning(
            "undecodable history event skipped subject=%s seq=%d",
            msg.subject,
            msg.metadata.sequence.stream,
        )
        return None


class _Cursor:
    """Reads one subject of a stream in order; recreates a lost consumer.

    ``next_seq`` is the stream sequence of the next message to return; a
    consumer lost to a server restart or to inactivity is recreated from it.
    """

    def __init__(self, js: JetStreamContext, stream: str, subject: str) -> None:
        self._js = js
        self._stream = stream
        self._subject = subject
        self._sub: JetStreamContext.PullSubscription | None = None
        self._failures = 0
        self.next_seq = 1

    async def read(self, timeout_s: float) -> list[Msg]:
        """Stored messages from ``next_seq`` on ([] if none came in time).

        Raises:
            nats.errors.Error: the connection is closed, or the consumer
                could not be (re)created after repeated tries.
        """
        try:
            if self._sub is None:
                self._sub = await self._subscribe()
            msgs = await self._sub.fetch(_BATCH, timeout=timeout_s)
        except TimeoutError:
            return []
        except ConnectionClosedError:
            raise
        except NatsError as exc:
            await self._recover(exc)
            return []

        self._failures = 0
        fresh = [m for m in msgs if m.metadata.sequence.stream >= self.next_seq]
        if fresh:
            self.next_seq = fresh[-1].metadata.sequence.stream + 1
        return fresh

    async def close(self) -> None:
        """Unsubscribe (the server deletes the consumer once it is inactive)."""
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(NatsError):
                await sub.unsubscribe()

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        start = self.next_seq
        config = ConsumerConfig(
            deliver_policy=(
                DeliverPolicy.ALL if start <= 1 else DeliverPolicy.BY_START_SEQUENCE
            ),
            opt_start_seq=None if start <= 1 else start,
            ack_policy=AckPolicy.NONE,
            inactive_threshold=_INACTIVE_S,
            filter_subject=self._subject,
            mem_storage=True,
        )
        return await self._js.pull_subscribe(
            self._subject, stream=self._stream, config=config
        )

    async def _recover(self, exc: NatsError) -> None:
        """Drop the consumer and back off; give up after ``_MAX_FAILURES``."""
        self._failures += 1
        logger.debug(
            "chunk consumer lost, recreating subject=%s next_seq=%d try=%d error=%r",
            self._subject,
            self.next_seq,
            self._failures,
            exc,
        )
        await self.close()
        if self._failures >= _MAX_FAILURES:
            raise exc
        await asyncio.sleep(min(0.05 * 2**self._failures, _MAX_BACKOFF_S))


async def _last_seq(js: JetStreamContext, stream: str, subject: str) -> int:
    """The stream sequence of the last message on ``subject`` (0 if none)."""
    try:
        last = await js.get_last_msg(stream, subject)
    except NotFoundError:
        return 0
    return int(last.seq or 0)


def _is_token(run_id: str) -> bool:
    """True if ``run_id`` is one subject token (no wildcard could widen a read)."""
    return bool(run_id) and not _FORBIDDEN_IN_TOKEN.intersection(run_id)


def _chunk_of(msg: Msg, run_id: str) -> Chunk | None:
    """The chunk in ``msg`` (None, logged, if its subject is not a step's)."""
    headers = msg.headers or {}
    token = msg.subject.removeprefix(f"stream.{run_id}.")
    try:
        step_id = decode_token(token)
    except ValueError:
        logger.warning("chunk on an unknown subject skipped subject=%s", msg.subject)
        return None
    return Chunk(
        step_id=step_id,
        attempt=_int_header(headers, ATTEMPT_HEADER, 0),
        index=_int_header(headers, CHUNK_HEADER, -1),
        data=_decoded(msg.data, headers.get(ENCODING_HEADER, "bytes")),
    )


def _int_header(headers: dict[str, str], name: str, default: int) -> int:
    try:
        return int(headers.get(name, default))
    except ValueError:
        return default


def _decoded(body: bytes, encoding: str) -> bytes | str | Any:
    """The chunk's value: text and JSON decoded, anything else left as bytes."""
    if encoding == "text":
        return body.decode("utf-8", errors="replace")
    if encoding != "json":
        return body
    try:
        return json.loads(body)
    except ValueError:
        logger.warning("chunk is not the JSON it claims; kept as bytes")
        return body
