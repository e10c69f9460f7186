"""ensure_resources: creation, idempotence, adoption and refusal of existing streams."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from nats.aio.client import Client as NatsClient
from nats.js.api import RetentionPolicy, StorageType

from dagnats.errors import ResourceConflictError
from dagnats.natsio import EmbeddedServer, connect, ensure_resources
from dagnats.natsio import resources as resources_module
from dagnats.protocol import (
    CHECKPOINTS_BUCKET,
    DEAD_LETTER_STREAM,
    DEFS_BUCKET,
    HISTORY_STREAM,
    OUTPUT_STREAM,
    RUNS_BUCKET,
    TASK_STREAM,
)

STREAMS = (HISTORY_STREAM, TASK_STREAM, DEAD_LETTER_STREAM, OUTPUT_STREAM)
BUCKETS = (DEFS_BUCKET, RUNS_BUCKET, CHECKPOINTS_BUCKET)


# A server with JetStream but none of dagnats' streams or buckets.
@pytest.fixture
async def bare_server(tmp_path) -> AsyncIterator[EmbeddedServer]:
    async with EmbeddedServer(tmp_path / "nats", port=0) as server:
        yield server


@pytest.fixture
async def bare_nc(bare_server: EmbeddedServer) -> AsyncIterator[NatsClient]:
    conn = await connect(bare_server.url, name="dagnats-test")
    yield conn
    await conn.close()


async def stream_configs(js) -> dict[str, object]:
    """The config of every dagnats stream and bucket stream, by name."""
    names = [*STREAMS, *(f"KV_{b}" for b in BUCKETS)]
    return {name: (await js.stream_info(name)).config for name in names}


async def test_ensure_resources_creates_every_stream_and_bucket(bare_nc):
    js = bare_nc.jetstream()

    await ensure_resources(js)

    configs = await stream_configs(js)
    assert configs[TASK_STREAM].retention == RetentionPolicy.WORK_QUEUE
    assert configs[HISTORY_STREAM].retention == RetentionPolicy.LIMITS
    assert configs[HISTORY_STREAM].duplicate_window >= 120
    assert configs[f"KV_{DEFS_BUCKET}"].max_msgs_per_subject == 5


def resource_changes(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What ensure_resources logged as created or updated."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == resources_module.__name__ and r.levelno >= logging.INFO
    ]


async def test_ensure_resources_twice_changes_nothing(bare_server, bare_nc, caplog):
    await ensure_resources(bare_nc.jetstream())
    before = await stream_configs(bare_nc.jetstream())
    assert len(resource_changes(caplog)) == len(STREAMS) + len(BUCKETS)
    caplog.clear()

    # A second connection, so the per-context shortcut cannot skip the checks.
    other = await connect(bare_server.url, name="dagnats-test-other")
    try:
        await ensure_resources(other.jetstream())
    finally:
        await other.close()

    after = await stream_configs(bare_nc.jetstream())
    assert resource_changes(caplog) == []
    assert after == before


async def test_task_stream_with_limits_retention_is_refused_naming_retention(
    bare_nc,
):
    js = bare_nc.jetstream()
    await js.add_stream(name=TASK_STREAM, subjects=["task.>"])

    with pytest.raises(ResourceConflictError) as raised:
        await ensure_resources(js)

    message = str(raised.value)
    assert "retention" in message
    assert TASK_STREAM in message
    assert "nats stream rm" in message
    info = await js.stream_info(TASK_STREAM)
    assert info.config.retention == RetentionPolicy.LIMITS


async def test_task_stream_with_other_subjects_is_refused_naming_subjects(bare_nc):
    js = bare_nc.jetstream()
    await js.add_stream(
        name=TASK_STREAM, subjects=["task.*"], retention=RetentionPolicy.WORK_QUEUE
    )

    with pytest.raises(ResourceConflictError) as raised:
        await ensure_resources(js)

    message = str(raised.value)
    assert f"stream {TASK_STREAM} exists with subjects=['task.*']" in message
    assert "['task.>']" in message


async def test_another_stream_owning_the_subjects_is_refused(bare_nc):
    js = bare_nc.jetstream()
    await js.add_stream(name="SOMEONE_ELSE", subjects=["task.>"])

    with pytest.raises(ResourceConflictError) as raised:
        await ensure_resources(js)

    message = str(raised.value)
    assert f"stream {TASK_STREAM} cannot be created" in message
    assert "another stream already takes subjects ['task.>']" in message


async def test_history_stream_with_short_duplicate_window_is_widened(bare_nc, caplog):
    js = bare_nc.jetstream()
    await js.add_stream(
        name=HISTORY_STREAM,
        subjects=["history.>"],
        duplicate_window=10.0,
        max_msgs=1_000_000,
        description="set by an operator",
    )
    await js.publish("history.x", b"before")

    await ensure_resources(js)

    info = await js.stream_info(HISTORY_STREAM)
    assert info.config.duplicate_window >= 120
    assert info.state.messages == 1
    # Only the fields dagnats needs change; the rest stays as it was.
    assert info.config.max_msgs == 1_000_000
    assert info.config.description == "set by an operator"
    [updated] = [m for m in resource_changes(caplog) if "updated" in m]
    assert updated.startswith(f"stream updated name={HISTORY_STREAM} ")
    assert "duplicate_window=10.0->300.0" in updated


async def test_definitions_bucket_with_one_revision_gets_five(bare_nc):
    js = bare_nc.jetstream()
    await js.create_key_value(bucket=DEFS_BUCKET, history=1)

    await ensure_resources(js)

    info = await js.stream_info(f"KV_{DEFS_BUCKET}")
    assert info.config.max_msgs_per_subject == 5


async def test_a_bucket_in_memory_is_refused_naming_storage(bare_nc):
    js = bare_nc.jetstream()
    await js.create_key_value(bucket=RUNS_BUCKET, storage=StorageType.MEMORY)

    with pytest.raises(ResourceConflictError) as raised:
        await ensure_resources(js)

    message = str(raised.value)
    assert f"kv bucket {RUNS_BUCKET} exists with storage='memory'" in message
    assert f"nats kv del {RUNS_BUCKET}" in message


# Regression: a cache keyed on id(js) skipped new contexts reusing a freed id.
async def test_a_new_context_reusing_a_freed_id_still_gets_resources(tmp_path):
    async with (
        EmbeddedServer(tmp_path / "a", port=0) as first,
        EmbeddedServer(tmp_path / "b", port=0) as second,
    ):
        nc_first = await connect(first.url)
        nc_second = await connect(second.url)
        try:
            seen: set[int] = set()
            for _ in range(100):
                js = nc_first.jetstream()
                seen.add(id(js))
                await ensure_resources(js)
                del js
                js = nc_second.jetstream()
                if id(js) in seen:
                    break

            await ensure_resources(js)
            await js.stream_info(TASK_STREAM)
        finally:
            await nc_first.close()
            await nc_second.close()
