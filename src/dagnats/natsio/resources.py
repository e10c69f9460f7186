"""Streams and KV buckets dagnats needs, created idempotently by every process.

Each resource is one entry in ``STREAMS`` / ``BUCKETS``. An existing resource
with a different config is updated where JetStream allows it; where it does
not (subjects owned elsewhere, retention, storage), the conflict is
reported with the fix, never silently used (SPEC Part A 12).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BucketNotFoundError, NotFoundError

from dagnats.errors import ResourceConflictError
from dagnats.protocol import (
    CHECKPOINTS_BUCKET,
    DEAD_LETTER_STREAM,
    DEFS_BUCKET,
    HISTORY_STREAM,
    OUTPUT_STREAM,
    RUNS_BUCKET,
    TASK_STREAM,
)

logger = logging.getLogger(__name__)

_DAY_S = 86_400.0


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """What dagnats wants of one stream."""

    name: str
    subjects: tuple[str, ...]
    retention: RetentionPolicy = RetentionPolicy.LIMITS
    max_age_s: float = 0.0
    duplicate_window_s: float = 120.0
    max_bytes: int = -1
    max_msg_size: int = -1


@dataclass(frozen=True, slots=True)
class BucketSpec:
    """What dagnats wants of one KV bucket."""

    name: str
    history: int = 1


STREAMS = (
    # Dedup window ≥ 2 min so a repeated publish of an event is dropped (DESIGN §3.1).
    StreamSpec(
        HISTORY_STREAM, ("history.>",), max_age_s=30 * _DAY_S, duplicate_window_s=300.0
    ),
    StreamSpec(
        TASK_STREAM, ("task.>",), RetentionPolicy.WORK_QUEUE, duplicate_window_s=300.0
    ),
    StreamSpec(
        DEAD_LETTER_STREAM,
        ("dead.>",),
        max_age_s=30 * _DAY_S,
        duplicate_window_s=_DAY_S,
    ),
    # Step output chunks: replayable for a day, bounded in size (DESIGN §5).
    StreamSpec(
        OUTPUT_STREAM,
        ("stream.>",),
        max_age_s=_DAY_S,
        max_bytes=1 << 30,
        max_msg_size=1 << 20,
    ),
)

BUCKETS = (
    # A few revisions of each definition stay readable after re-registration.
    BucketSpec(DEFS_BUCKET, history=5),
    BucketSpec(RUNS_BUCKET, history=1),
    BucketSpec(CHECKPOINTS_BUCKET, history=1),
)


async def ensure_resources(js: JetStreamContext, *, replicas: int = 1) -> None:
    """Create or adopt every stream and bucket (a few requests; call it at start).

    Raises:
        ResourceConflictError: a resource exists with a config that cannot
            be changed to what dagnats needs.
    """
    for spec in STREAMS:
        await _ensure_stream(js, spec, replicas)
    for bucket in BUCKETS:
        await _ensure_bucket(js, bucket, replicas)


async def _ensure_stream(js: JetStreamContext, spec: StreamSpec, replicas: int) -> None:
    wanted = StreamConfig(
        name=spec.name,
        subjects=list(spec.subjects),
        retention=spec.retention,
        storage=StorageType.FILE,
        max_age=spec.max_age_s,
        duplicate_window=spec.duplicate_window_s,
        max_bytes=spec.max_bytes,
        max_msg_size=spec.max_msg_size,
        discard=DiscardPolicy.OLD,
        num_replicas=replicas,
    )
    try:
        info = await js.stream_info(spec.name)
    except NotFoundError:
        await js.add_stream(wanted)
        logger.info("stream created name=%s", spec.name)
        return
    current = info.config
    _refuse_immutable(spec.name, "retention", current.retention, spec.retention)
    _refuse_immutable(spec.name, "storage", current.storage, StorageType.FILE)
    changed = _changed_fields(current, wanted)
    if changed:
        await js.update_stream(wanted)
        logger.info("stream updated name=%s fields=%s", spec.name, ",".join(changed))


def _changed_fields(current: StreamConfig, wanted: StreamConfig) -> list[str]:
    fields = ("subjects", "max_age", "duplicate_window", "max_bytes", "max_msg_size")
    changed = []
    for field in fields:
        have: Any = getattr(current, field)
        want: Any = getattr(wanted, field)
        if field == "subjects":
            have, want = sorted(have or []), sorted(want or [])
        elif isinstance(want, float):
            have = float(have or 0.0)
            if abs(have - want) < 1e-3:
                continue
        if have != want:
            changed.append(field)
    return changed


def _refuse_immutable(name: str, field: str, have: Any, want: Any) -> None:
    if have is None or have == want:
        return
    have_text = getattr(have, "value", have)
    want_text = getattr(want, "value", want)
    raise ResourceConflictError(
        f"stream {name} exists with {field}={have_text!r} but dagnats needs "
        f"{field}={want_text!r}, which JetStream cannot change in place; delete the "
        f"stream (`nats stream rm {name}`) or point dagnats at another server"
    )


async def _ensure_bucket(js: JetStreamContext, spec: BucketSpec, replicas: int) -> None:
    try:
        status = await js.key_value(spec.name)
    except BucketNotFoundError:
        await js.create_key_value(
            bucket=spec.name, history=spec.history, replicas=replicas
        )
        logger.info("kv bucket created name=%s", spec.name)
        return
    if status is None:
        return
    info = await js.stream_info(f"KV_{spec.name}")
    if info.config.max_msgs_per_subject != spec.history:
        config = info.config
        config.max_msgs_per_subject = spec.history
        await js.update_stream(config)
        logger.info("kv bucket updated name=%s history=%d", spec.name, spec.history)
