"""Step output streaming on a real nats-server: ChunkPublisher, stream_chunks, logs.

The publisher is driven directly (no worker): a run's history is written by
hand with the protocol's event types, as a worker and the engine would.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from click.testing import CliRunner, Result

from dagnats import TaskContext, Worker, Workflow
from dagnats.cli.logs import logs
from dagnats.client import streaming as client_streaming
from dagnats.client.streaming import Chunk, _Resolution, stream_chunks
from dagnats.errors import RunNotFoundError, TaskAlreadyResolvedError
from dagnats.protocol import (
    MSG_ID_HEADER,
    OUTPUT_STREAM,
    ErrorInfo,
    FailureKind,
    StepCompleted,
    StepFailed,
    StepRetryDue,
    WorkflowStarted,
    encode_event,
    history_subject,
)
from dagnats.testing import connected_client, running_engine, running_worker
from dagnats.worker import streaming as worker_streaming
from dagnats.worker.streaming import (
    MAX_CHUNK_BYTES,
    MAX_PENDING_CHUNKS,
    ChunkBacklogError,
    ChunkPublisher,
)

WAIT_S = 10.0
STEP = "fetch"
RETRY_ONCE = {"max_attempts": 1, "strategy": "fixed", "initial_delay": "1s"}


@pytest.fixture
async def run_id(nc: Any) -> str:
    """A run of a workflow with steps ``fetch`` and ``render``, started by hand."""
    defn = Workflow("streaming").task(STEP, "fetch").task("render", "render").build()
    event = WorkflowStarted(run_id="run1", workflow=defn.to_json_dict())
    await _publish_event(nc, event)
    return event.run_id


async def _publish_event(nc: Any, event: Any) -> None:
    await nc.jetstream().publish(
        history_subject(event.run_id),
        encode_event(event),
        headers={MSG_ID_HEADER: event.msg_id},
    )


def _publisher(nc: Any, run_id: str, attempt: int = 0, step_id: str = STEP):
    return ChunkPublisher(nc, run_id, step_id, attempt, asyncio.get_running_loop())


async def _collect(chunks: AsyncIterator[Chunk]) -> list[Chunk]:
    return [chunk async for chunk in chunks]


async def _stored(nc: Any, run_id: str, step_id: str | None = STEP) -> list[Chunk]:
    return await asyncio.wait_for(
        _collect(stream_chunks(nc, run_id, step_id, follow=False)), WAIT_S
    )


# --- ChunkPublisher and stream_chunks -----------------------------------------


async def test_a_late_reader_receives_all_1000_chunks_in_order(nc, run_id):
    publisher = _publisher(nc, run_id)
    for i in range(500):
        publisher.put(f"line {i}\n")
    assert await publisher.flush()

    reader = asyncio.create_task(_collect(stream_chunks(nc, run_id, STEP)))
    for i in range(500, 1000):
        publisher.put(f"line {i}\n")
    assert await publisher.flush()
    await _publish_event(nc, StepCompleted(run_id=run_id, step_id=STEP, attempt=0))

    got = await asyncio.wait_for(reader, WAIT_S)
    assert [c.index for c in got] == list(range(1000))
    assert [c.data for c in got] == [f"line {i}\n" for i in range(1000)]
    assert {(c.step_id, c.attempt) for c in got} == {(STEP, 0)}
    await publisher.close()


async def test_the_reader_ends_by_itself_when_the_step_completes(nc, run_id):
    reader = asyncio.create_task(_collect(stream_chunks(nc, run_id, STEP)))
    publisher = _publisher(nc, run_id)
    for i in range(3):
        publisher.put({"progress": i})
    assert await publisher.flush()
    await _publish_event(nc, StepCompleted(run_id=run_id, step_id=STEP, attempt=0))

    got = await asyncio.wait_for(reader, WAIT_S)
    assert [c.data for c in got] == [{"progress": 0}, {"progress": 1}, {"progress": 2}]
    await publisher.close()


async def test_a_reader_attaching_after_the_step_resolved_gets_everything(nc, run_id):
    publisher = _publisher(nc, run_id)
    publisher.put("only chunk")
    await publisher.close()
    await _publish_event(nc, StepCompleted(run_id=run_id, step_id=STEP, attempt=0))

    got = await asyncio.wait_for(_collect(stream_chunks(nc, run_id, STEP)), WAIT_S)
    assert [c.data for c in got] == ["only chunk"]


def _retrying_run() -> tuple[WorkflowStarted, list[Any]]:
    """A run whose step fails once, is retried, and completes: its events."""
    defn = Workflow("retrying").task(STEP, "fetch", retry=RETRY_ONCE).build()
    started = WorkflowStarted(run_id="run2", workflow=defn.to_json_dict())
    error = ErrorInfo(type="Boom", message="first attempt failed")
    events = [
        StepFailed(run_id="run2", step_id=STEP, attempt=0, error=error),
        StepRetryDue(run_id="run2", step_id=STEP, attempt=1, dispatch=2),
        StepCompleted(run_id="run2", step_id=STEP, attempt=1),
    ]
    return started, events


def test_a_failure_that_will_be_retried_is_not_the_end_of_the_step():
    started, (failed, due, completed) = _retrying_run()
    resolution = _Resolution(STEP)
    resolution.apply(started)

    stale = StepCompleted(run_id="run2", step_id=STEP, attempt=0)
    for event, resolved in ((failed, False), (stale, False), (due, False)):
        resolution.apply(event)
        assert resolution.is_resolved is resolved, event.type
    resolution.apply(completed)
    assert resolution.is_resolved


async def test_the_stream_of_a_retried_step_holds_both_attempts(nc):
    started, (failed, due, completed) = _retrying_run()
    await _publish_event(nc, started)
    reader = asyncio.create_task(_collect(stream_chunks(nc, started.run_id, STEP)))

    first = _publisher(nc, started.run_id, attempt=0)
    first.put("try 1")
    await first.close()
    await _publish_event(nc, failed)
    await _publish_event(nc, due)
    second = _publisher(nc, started.run_id, attempt=1)
    second.put("try 2")
    await second.close()
    await _publish_event(nc, completed)

    got = await asyncio.wait_for(reader, WAIT_S)
    assert [(c.attempt, c.data) for c in got] == [(0, "try 1"), (1, "try 2")]


async def test_a_permanent_failure_ends_the_stream(nc, run_id):
    reader = asyncio.create_task(_collect(stream_chunks(nc, run_id, STEP)))
    publisher = _publisher(nc, run_id)
    publisher.put("before the failure")
    await publisher.close()
    error = ErrorInfo(type="Boom", message="cannot go on")
    failed = StepFailed(
        run_id=run_id,
        step_id=STEP,
        attempt=0,
        error=error,
        failure=FailureKind.PERMANENT,
    )
    await _publish_event(nc, failed)

    got = await asyncio.wait_for(reader, WAIT_S)
    assert [c.data for c in got] == ["before the failure"]


async def test_the_whole_run_stream_ends_when_the_run_completes(nc, run_id):
    reader = asyncio.create_task(_collect(stream_chunks(nc, run_id)))
    fetch = _publisher(nc, run_id, step_id=STEP)
    render = _publisher(nc, run_id, step_id="render")
    fetch.put("a")
    render.put("b")
    fetch.put("c")
    for publisher in (fetch, render):
        await publisher.close()
    for step_id in (STEP, "render"):
        await _publish_event(
            nc, StepCompleted(run_id=run_id, step_id=step_id, attempt=0)
        )

    got = await asyncio.wait_for(reader, WAIT_S)
    assert sorted((c.step_id, c.index, c.data) for c in got) == [
        (STEP, 0, "a"),
        (STEP, 1, "c"),
        ("render", 0, "b"),
    ]


async def test_mixed_chunk_types_round_trip(nc, run_id):
    values: list[Any] = [
        b"\x00\xffraw",
        "texte accentué ✓",
        {"k": [1, 2.5, None, True]},
        [1, "two"],
        42,
        None,
    ]
    publisher = _publisher(nc, run_id)
    for value in values:
        publisher.put(value)
    await publisher.close()

    got = await _stored(nc, run_id)
    assert [c.data for c in got] == values
    assert isinstance(got[0].data, bytes)
    assert isinstance(got[1].data, str)


async def test_a_chunk_over_the_size_limit_raises_value_error_naming_the_limit(
    nc, run_id
):
    publisher = _publisher(nc, run_id)
    with pytest.raises(ValueError, match=rf"over the limit of {MAX_CHUNK_BYTES} bytes"):
        publisher.put(b"x" * (MAX_CHUNK_BYTES + 1))
    publisher.put(b"x" * MAX_CHUNK_BYTES)
    await publisher.close()

    got = await _stored(nc, run_id)
    assert [(c.index, len(c.data)) for c in got] == [(0, MAX_CHUNK_BYTES)]


async def test_a_chunk_that_is_not_json_raises_type_error(nc, run_id):
    publisher = _publisher(nc, run_id)
    with pytest.raises(TypeError, match="object"):
        publisher.put(object())
    await publisher.close()


async def test_put_from_a_plain_thread_keeps_the_order(nc, run_id):
    publisher = _publisher(nc, run_id)

    def handler() -> None:
        for i in range(200):
            publisher.put(i)

    thread = threading.Thread(target=handler)
    thread.start()
    await asyncio.to_thread(thread.join, WAIT_S)
    assert not thread.is_alive()
    assert await publisher.flush()

    got = await _stored(nc, run_id)
    assert [(c.index, c.data) for c in got] == [(i, i) for i in range(200)]
    await publisher.close()


async def test_each_chunk_carries_its_attempt(nc, run_id):
    for attempt in (0, 1):
        publisher = _publisher(nc, run_id, attempt=attempt)
        publisher.put(f"attempt {attempt} first")
        publisher.put(f"attempt {attempt} second")
        await publisher.close()

    got = await _stored(nc, run_id)
    assert [(c.attempt, c.index, c.data) for c in got] == [
        (0, 0, "attempt 0 first"),
        (0, 1, "attempt 0 second"),
        (1, 0, "attempt 1 first"),
        (1, 1, "attempt 1 second"),
    ]


async def test_a_repeated_publish_is_dropped_but_a_resumed_dispatch_is_kept(nc, run_id):
    loop = asyncio.get_running_loop()
    for dispatch in (1, 1, 2):
        publisher = ChunkPublisher(nc, run_id, STEP, 0, loop, dispatch=dispatch)
        publisher.put(f"dispatch {dispatch}")
        await publisher.close()

    got = await _stored(nc, run_id)
    assert [c.data for c in got] == ["dispatch 1", "dispatch 2"]


async def test_follow_false_returns_what_is_stored_and_stops(nc, run_id):
    publisher = _publisher(nc, run_id)
    for i in range(5):
        publisher.put(i)
    assert await publisher.flush()

    # The step has not resolved; without follow the reader does not wait for it.
    got = await _stored(nc, run_id)
    assert [c.data for c in got] == list(range(5))
    assert await _stored(nc, run_id, "render") == []
    await publisher.close()


async def test_too_many_pending_chunks_raise_instead_of_growing_memory(nc, run_id):
    publisher = _publisher(nc, run_id)
    for i in range(MAX_PENDING_CHUNKS):
        publisher.put(i)  # the loop never runs in between: all stay pending
    with pytest.raises(ChunkBacklogError, match=f"{MAX_PENDING_CHUNKS} chunks"):
        publisher.put("one too many")

    assert await publisher.flush()
    publisher.put("room again")
    await publisher.close()
    got = await _stored(nc, run_id)
    assert len(got) == MAX_PENDING_CHUNKS + 1


async def test_put_after_close_raises(nc, run_id):
    publisher = _publisher(nc, run_id)
    await publisher.close()
    with pytest.raises(TaskAlreadyResolvedError, match="put_stream"):
        publisher.put("late")


async def test_a_chunk_that_cannot_be_stored_is_retried_then_logged_and_dropped(
    nc, run_id, caplog
):
    await nc.jetstream().delete_stream(OUTPUT_STREAM)
    publisher = _publisher(nc, run_id)
    publisher.put("nowhere to go")

    assert await publisher.flush() is False
    await publisher.close()
    failures = [
        r
        for r in caplog.records
        if r.levelno == logging.WARNING and "publish failed" in r.getMessage()
    ]
    assert len(failures) == worker_streaming._PUBLISH_TRIES
    assert f"run_id={run_id} step_id={STEP}" in failures[0].getMessage()
    assert any("chunk dropped" in r.getMessage() for r in caplog.records)


async def test_the_reader_recreates_a_lost_consumer_and_misses_nothing(nc, run_id):
    js = nc.jetstream()
    publisher = _publisher(nc, run_id)
    chunks = stream_chunks(nc, run_id, STEP)
    publisher.put(0)
    assert await publisher.flush()
    first = await asyncio.wait_for(anext(chunks), WAIT_S)

    for info in await js.consumers_info(OUTPUT_STREAM):
        await js.delete_consumer(OUTPUT_STREAM, info.name)
    for i in range(1, 4):
        publisher.put(i)
    await publisher.close()
    await _publish_event(nc, StepCompleted(run_id=run_id, step_id=STEP, attempt=0))

    rest = await asyncio.wait_for(_collect(chunks), WAIT_S)
    assert [c.data for c in [first, *rest]] == [0, 1, 2, 3]


async def test_an_unknown_run_raises_run_not_found(nc):
    for follow in (True, False):
        chunks = stream_chunks(nc, "nosuchrun", follow=follow)
        with pytest.raises(RunNotFoundError):
            await asyncio.wait_for(anext(chunks), WAIT_S)
    with pytest.raises(RunNotFoundError):
        await anext(stream_chunks(nc, "run.*", follow=False))


def test_worker_and_client_agree_on_the_chunk_headers():
    for name in ("ENCODING_HEADER", "ATTEMPT_HEADER", "CHUNK_HEADER"):
        assert getattr(worker_streaming, name) == getattr(client_streaming, name)


# --- dagnats run logs ----------------------------------------------------------


async def _logs(*args: str) -> Result:
    """The command in a thread: its asyncio.run must not meet the test's loop."""
    return await asyncio.to_thread(CliRunner().invoke, logs, list(args))


async def test_logs_prints_data_as_is_and_marks_each_attempt_on_stderr(
    nc, nats_url, run_id
):
    for attempt, values in ((0, [b"raw ", "text\n"]), (1, [{"n": 1}])):
        publisher = _publisher(nc, run_id, attempt=attempt)
        for value in values:
            publisher.put(value)
        await publisher.close()

    result = await _logs(run_id, "--step", STEP, "--nats-url", nats_url)
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == b'raw text\n{"n":1}\n'
    assert result.stderr.splitlines() == [
        f"--- step {STEP} attempt 1 ---",
        f"--- step {STEP} attempt 2 ---",
    ]


async def test_logs_json_prints_one_object_per_chunk(nc, nats_url, run_id):
    publisher = _publisher(nc, run_id)
    for value in (b"\x00\x01", "hi", [1]):
        publisher.put(value)
    await publisher.close()

    result = await _logs(run_id, "--json", "--nats-url", nats_url)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines == [
        {
            "step_id": STEP,
            "attempt": 0,
            "index": 0,
            "data": base64.b64encode(b"\x00\x01").decode(),
            "encoding": "base64",
        },
        {"step_id": STEP, "attempt": 0, "index": 1, "data": "hi"},
        {"step_id": STEP, "attempt": 0, "index": 2, "data": [1]},
    ]


async def test_logs_follow_ends_when_the_step_completes(nc, nats_url, run_id):
    publisher = _publisher(nc, run_id)
    publisher.put("streamed\n")
    await publisher.close()
    await _publish_event(nc, StepCompleted(run_id=run_id, step_id=STEP, attempt=0))

    result = await asyncio.wait_for(
        _logs(run_id, "--step", STEP, "--follow", "--nats-url", nats_url), WAIT_S
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == "streamed\n"


async def test_logs_of_an_unknown_run_exits_2(nats_url):
    result = await _logs("nosuchrun", "--nats-url", nats_url)
    assert result.exit_code == 2
    assert "not found" in result.stderr


# --- end to end ----------------------------------------------------------------


@pytest.mark.skipif(
    not hasattr(TaskContext, "put_stream"),
    reason="TaskContext.put_stream is not wired to ChunkPublisher yet",
)
async def test_a_worker_streams_a_failed_attempt_and_its_retry(nats_url):
    worker = Worker(nats_url, ack_wait=5.0)

    @worker.task("count")
    def count(ctx: TaskContext, upto: int) -> int:
        for i in range(upto):
            ctx.put_stream(f"{ctx.attempt}:{i}\n")
        if ctx.retry_count == 0:
            raise RuntimeError("first attempt fails after streaming")
        return upto

    retry = {"max_attempts": 1, "strategy": "fixed", "initial_delay": "100ms"}
    defn = Workflow("stream-e2e").task("s", "count", retry=retry).build()
    async with (
        running_engine(nats_url),
        running_worker(worker),
        connected_client(nats_url) as client,
    ):
        await client.register_workflow(defn)
        run_id = await client.start_run(defn.name, 50)
        chunks = stream_chunks(client.nc, run_id, "s")
        got = await asyncio.wait_for(_collect(chunks), 30.0)
        assert await client.wait(run_id, timeout=WAIT_S) == 50

    expected = [(a, i, f"{a + 1}:{i}\n") for a in (0, 1) for i in range(50)]
    assert [(c.attempt, c.index, c.data) for c in got] == expected
