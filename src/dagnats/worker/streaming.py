"""Publishing a step's output chunks to the replayable ``STEP_OUTPUT`` stream.

A handler's ``put`` only encodes, numbers and queues a chunk; one task on the
worker's event loop publishes the queue in order and waits for each
JetStream ack, so a slow reader never slows the handler (JetStream stores,
readers catch up at their pace) and the worker can ``flush`` before it
publishes the step's result (DESIGN §5): a reader that sees the result knows
every chunk before it is stored.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import threading
from dataclasses import dataclass
from typing import Any

from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError

from dagnats.errors import TaskAlreadyResolvedError, TaskError
from dagnats.protocol import MSG_ID_HEADER, encode_token, stream_subject

logger = logging.getLogger(__name__)

# Wire headers of a chunk. dagnats.client.streaming reads the same names (it
# may not import this package); tests/worker/test_streaming.py checks they agree.
ENCODING_HEADER = "Dagnats-Encoding"
ATTEMPT_HEADER = "Dagnats-Attempt"
CHUNK_HEADER = "Dagnats-Chunk"

# Half the stream's max_msg_size and the server's default max_payload (1 MiB
# each), so a chunk ``put`` accepted is never refused by NATS, headers included.
MAX_CHUNK_BYTES = 512 * 1024
# What may wait for JetStream at once; beyond it ``put`` refuses rather than
# letting memory grow with a handler that outruns NATS.
MAX_PENDING_CHUNKS = 1000
MAX_PENDING_BYTES = 64 * 1024 * 1024

_PUBLISH_TRIES = 3
_PUBLISH_TIMEOUT_S = 2.0
_RETRY_DELAY_S = 0.1
_CLOSE_WAIT_S = 1.0


class ChunkBacklogError(TaskError):
    """Too many chunks are waiting to be stored; the handler outruns NATS."""

    def __init__(self, step_id: str, chunks: int, size_bytes: int) -> None:
        self.step_id = step_id
        self.chunks = chunks
        self.size_bytes = size_bytes
        super().__init__(
            f"step {step_id!r} has {chunks} chunks ({size_bytes} bytes) waiting to "
            f"be stored, the limit is {MAX_PENDING_CHUNKS} chunks or "
            f"{MAX_PENDING_BYTES} bytes; stream fewer, larger chunks, or check "
            "that NATS is reachable"
        )


@dataclass(frozen=True, slots=True)
class _Queued:
    """One encoded chunk waiting for its publish."""

    index: int
    body: bytes
    headers: dict[str, str]


def encode_chunk(chunk: Any) -> tuple[bytes, str]:
    """The wire body of ``chunk`` and its encoding (``bytes``, ``text``, ``json``).

    Raises:
        TypeError: ``chunk`` is neither bytes, str nor JSON-serialisable.
        ValueError: ``chunk`` holds a float JSON cannot carry (NaN, infinity).
    """
    if isinstance(chunk, bytes | bytearray | memoryview):
        return bytes(chunk), "bytes"
    if isinstance(chunk, str):
        return chunk.encode("utf-8"), "text"
    try:
        text = json.dumps(chunk, ensure_ascii=False, separators=(",", ":"))
    except TypeError as exc:
        raise TypeError(
            f"cannot stream a chunk of type {type(chunk).__name__}: {exc}; pass "
            "bytes, str, or a JSON value (dict, list, number, bool, None)"
        ) from exc
    except ValueError as exc:
        raise ValueError(
            f"cannot stream the chunk as JSON: {exc}; replace NaN and infinity"
        ) from exc
    return text.encode("utf-8"), "json"


class ChunkPublisher:
    """Streams the output chunks of one attempt of one step; thread-safe.

    ``put`` may be called from a sync handler's thread or from the loop; it
    never blocks. Chunks are numbered 0, 1, 2… and published in that order
    to ``stream.<run_id>.<step>`` with the attempt (the retry count) in a
    header. ``dispatch`` is the task message's dispatch number: a step that
    resumes after ``pause()`` keeps its retry count, and the number keeps
    the resumed execution's chunks from being dropped as duplicates.
    """

    def __init__(
        self,
        nc: NatsClient,
        run_id: str,
        step_id: str,
        attempt: int,
        loop: asyncio.AbstractEventLoop,
        *,
        dispatch: int = 0,
    ) -> None:
        self.run_id = run_id
        self.step_id = step_id
        self.attempt = attempt
        self._js = nc.jetstream()
        self._loop = loop
        self._subject = stream_subject(run_id, step_id)
        self._id_prefix = f"{run_id}.{encode_token(step_id)}.{attempt}"
        self._id_suffix = f".{dispatch}" if dispatch else ""

        self._lock = threading.Lock()
        self._next_index = 0
        self._pending = 0
        self._pending_bytes = 0
        self._closed = False

        # Touched on the loop only.
        self._queue: collections.deque[_Queued] = collections.deque()
        self._drain: asyncio.Task[None] | None = None
        self._finished = 0
        self._dropped = 0
        self._progress = asyncio.Event()
        self._stopped = False

    def put(self, chunk: Any) -> None:
        """Queue ``chunk`` (bytes, str, or any JSON value) for publishing.

        Returns at once; the chunk is stored in the background, in order.

        Raises:
            ValueError: the encoded chunk is larger than ``MAX_CHUNK_BYTES``.
            TypeError: the chunk is not bytes, str or a JSON value.
            ChunkBacklogError: too many chunks are still waiting to be stored.
            TaskAlreadyResolvedError: the attempt is over (publisher closed).
        """
        body, encoding = encode_chunk(chunk)
        if len(body) > MAX_CHUNK_BYTES:
            raise ValueError(
                f"chunk of {len(body)} bytes is over the limit of {MAX_CHUNK_BYTES} "
                f"bytes ({MAX_CHUNK_BYTES // 1024} KiB); split it into smaller "
                "chunks, or store large data elsewhere (an object store, a "
                "checkpoint, the step's output) and stream a reference to it"
            )

        with self._lock:
            self._check_open_and_room(len(body))
            index = self._next_index
            item = _Queued(index, body, self._headers(index, encoding))
            # Scheduled under the lock: callbacks run in the order of the indices.
            self._loop.call_soon_threadsafe(self._enqueue, item)
            self._next_index += 1
            self._pending += 1
            self._pending_bytes += len(body)

    async def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until every chunk put so far is stored (or given up).

        Call it on the worker's loop before publishing the step's result.
        Returns True when all of them are stored; False when the timeout
        passed first or a chunk could not be stored (both are logged).
        """
        with self._lock:
            target = self._next_index
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self._finished < target:
            remaining = deadline - loop.time()
            if remaining <= 0:
                logger.warning(
                    "stream chunks not stored in time run_id=%s step_id=%s "
                    "attempt=%d waiting=%d timeout_s=%g",
                    self.run_id,
                    self.step_id,
                    self.attempt + 1,
                    target - self._finished,
                    timeout_s,
                )
                return False
            self._progress.clear()
            try:
                await asyncio.wait_for(self._progress.wait(), remaining)
            except TimeoutError:
                continue

        return self._dropped == 0

    async def close(self, timeout_s: float = 5.0) -> None:
        """Refuse further chunks, flush, and stop the publishing task.

        Chunks not stored within ``timeout_s`` are dropped and logged.
        """
        with self._lock:
            self._closed = True
        await self.flush(timeout_s)

        self._stopped = True
        drain = self._drain
        if drain is not None and not drain.done():
            drain.cancel()
            await asyncio.wait({drain}, timeout=_CLOSE_WAIT_S)
        lost = len(self._queue)
        self._queue.clear()
        if lost:
            logger.warning(
                "stream chunks dropped at close run_id=%s step_id=%s attempt=%d "
                "count=%d",
                self.run_id,
                self.step_id,
                self.attempt + 1,
                lost,
            )

    def _check_open_and_room(self, size_bytes: int) -> None:
        if self._closed:
            raise TaskAlreadyResolvedError(
                f"put_stream() after step {self.step_id!r} attempt {self.attempt + 1} "
                "ended; stream chunks only while the handler runs"
            )
        too_many = self._pending >= MAX_PENDING_CHUNKS
        too_big = self._pending_bytes + size_bytes > MAX_PENDING_BYTES
        if too_many or too_big:
            raise ChunkBacklogError(self.step_id, self._pending, self._pending_bytes)

    def _headers(self, index: int, encoding: str) -> dict[str, str]:
        return {
            MSG_ID_HEADER: f"{self._id_prefix}.{index}.chunk{self._id_suffix}",
            ENCODING_HEADER: encoding,
            ATTEMPT_HEADER: str(self.attempt),
            CHUNK_HEADER: str(index),
        }

    def _enqueue(self, item: _Queued) -> None:
        """On the loop: queue ``item`` and make sure one task drains the queue."""
        if self._stopped:
            self._settle(item, stored=False)
            return
        self._queue.append(item)
        if self._drain is None or self._drain.done():
            self._drain = self._loop.create_task(
                self._publish_queue(), name=f"chunks-{self._subject}"
            )

    async def _publish_queue(self) -> None:
        while self._queue:
            item = self._queue[0]
            try:
                stored = await self._publish(item)
            except Exception:  # supervision boundary of this task: log, keep going
                logger.exception(
                    "stream chunk publish crashed run_id=%s step_id=%s chunk=%d",
                    self.run_id,
                    self.step_id,
                    item.index,
                )
                stored = False
            self._queue.popleft()
            self._settle(item, stored=stored)

    def _settle(self, item: _Queued, *, stored: bool) -> None:
        with self._lock:
            self._pending -= 1
            self._pending_bytes -= len(item.body)
        self._finished += 1
        if not stored:
            self._dropped += 1
        self._progress.set()

    async def _publish(self, item: _Queued) -> bool:
        """Store one chunk; a repeated publish is dropped by its Nats-Msg-Id."""
        delay_s = _RETRY_DELAY_S
        for try_number in range(1, _PUBLISH_TRIES + 1):
            try:
                await self._js.publish(
                    self._subject,
                    item.body,
                    timeout=_PUBLISH_TIMEOUT_S,
                    headers=item.headers,
                )
                return True
            except (NatsError, TimeoutError) as exc:
                logger.warning(
                    "stream chunk publish failed run_id=%s step_id=%s attempt=%d "
                    "chunk=%d try=%d error=%r",
                    self.run_id,
                    self.step_id,
                    self.attempt + 1,
                    item.index,
                    try_number,
                    exc,
                )
            if try_number < _PUBLISH_TRIES:
                await asyncio.sleep(delay_s)
                delay_s *= 2

        logger.warning(
            "stream chunk dropped run_id=%s step_id=%s attempt=%d chunk=%d bytes=%d",
            self.run_id,
            self.step_id,
            self.attempt + 1,
            item.index,
            len(item.body),
        )
        return False
