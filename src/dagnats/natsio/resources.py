"""The streams and KV buckets dagnats needs, made to match their specs by any process.

Each resource is one entry of ``STREAMS`` or ``BUCKETS``. A missing resource
is created. An existing one whose limits differ (max_age, duplicate_window,
max_bytes, max_msg_size, history) is updated in place and the change logged
at INFO. One that JetStream cannot change in place (subjects, retention,
storage) raises :class:`ResourceConflictError` with the fix; a conflicting
resource is never used silently (SPEC Part A 12).

``replicas`` applies to the resources a call creates. An existing resource
keeps its replica count, so a process started with the default of 1 never
shrinks a replicated stream.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Final

from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import APIError, NotFoundError, ServiceUnavailableError

from dagnats.errors import ConfigurationError, ResourceConflictError
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

_MINUTE_S = 60.0
_DAY_S = 86_400.0
_MIB = 1 << 20
_GIB = 1 << 30
_SUBJECTS_OVERLAP = 10065  # JetStream error code: another stream owns a subject
# Durations come back from the server in nanoseconds; compare at this precision.
_SECONDS_TOLERANCE = 1e-3


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """What dagnats needs of one stream (durations in seconds, 0 = no limit)."""

    subjects: tuple[str, ...]
    retention: RetentionPolicy = RetentionPolicy.LIMITS
    max_age_s: float = 0.0
    duplicate_window_s: float = 2 * _MINUTE_S
    max_bytes: int = -1
    max_msg_size: int = -1


@dataclass(frozen=True, slots=True)
class BucketSpec:
    """What dagnats needs of one KV bucket."""

    history: int = 1


STREAMS: Final[dict[str, StreamSpec]] = {
    # Dedup window ≥ 2 min so a repeated publish of an event is dropped (DESIGN §3.1).
    HISTORY_STREAM: StreamSpec(
        ("history.>",), max_age_s=30 * _DAY_S, duplicate_window_s=5 * _MINUTE_S
    ),
    TASK_STREAM: StreamSpec(
        ("task.>",), RetentionPolicy.WORK_QUEUE, duplicate_window_s=5 * _MINUTE_S
    ),
    # Dead letters are few and each matters: repeated publishes are dropped
    # for a whole day.
    DEAD_LETTER_STREAM: StreamSpec(
        ("dead.>",), max_age_s=30 * _DAY_S, duplicate_window_s=_DAY_S
    ),
    # Step output chunks: replayable for a day, bounded in size (DESIGN §5).
    OUTPUT_STREAM: StreamSpec(
        ("stream.>",), max_age_s=_DAY_S, max_bytes=_GIB, max_msg_size=_MIB
    ),
}

BUCKETS: Final[dict[str, BucketSpec]] = {
    # Runs pin their definition in workflow.started, so older revisions are
    # for operators only: the last few stay readable (`nats kv history`) to
    # see what changed and to roll back a bad re-registration.
    DEFS_BUCKET: BucketSpec(history=5),
    # Snapshots are rebuilt from the history stream; only the latest matters.
    RUNS_BUCKET: BucketSpec(history=1),
    CHECKPOINTS_BUCKET: BucketSpec(history=1),
}


async def ensure_resources(js: JetStreamContext, *, replicas: int = 1) -> None:
    """Create every stream and bucket, or bring existing ones in line (idempotent).

    A handful of requests; every process calls it once at start.

    Raises:
        ResourceConflictError: a resource exists with subjects, retention or
            storage that JetStream cannot change in place.
        ConfigurationError: JetStream refused a request (not enabled, out
            of storage, ...).
    """
    for name, stream in STREAMS.items():
        await _ensure_stream(js, name, stream, replicas)
    for name, bucket in BUCKETS.items():
        await _ensure_bucket(js, name, bucket, replicas)


@dataclass(frozen=True, slots=True)
class _Resource:
    """One stream or bucket, as named in logs and errors."""

    kind: str
    name: str
    stream: str
    fix: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


async def _ensure_stream(
    js: JetStreamContext, name: str, spec: StreamSpec, replicas: int
) -> None:
    wanted = StreamConfig(
        name=name,
        subjects=list(spec.subjects),
        retention=spec.retention,
        storage=StorageType.FILE,
        max_age=spec.max_age_s,
        duplicate_window=spec.duplicate_window_s,
        max_bytes=spec.max_bytes,
        max_msg_size=spec.max_msg_size,
        num_replicas=replicas,
    )
    fix = f"delete it (`nats stream rm {name}`, losing its messages)"
    resource = _Resource("stream", name, name, fix)
    current = await _existing_config(js, resource)
    if current is None:
        await _create_stream(js, resource, wanted)
        return

    fixed = _fields(wanted, "retention", "storage", "subjects")
    limits = _fields(wanted, "duplicate_window", "max_age", "max_bytes", "max_msg_size")
    _refuse_conflicts(resource, current, fixed)
    await _update(js, resource, current, limits, replicas)


async def _ensure_bucket(
    js: JetStreamContext, name: str, spec: BucketSpec, replicas: int
) -> None:
    fix = f"delete it (`nats kv del {name}`, losing its keys)"
    resource = _Resource("kv bucket", name, f"KV_{name}", fix)
    current = await _existing_config(js, resource)
    if current is None:
        try:
            await js.create_key_value(
                bucket=name,
                history=spec.history,
                storage=StorageType.FILE,
                replicas=replicas,
            )
        except APIError as exc:
            raise _translated(resource, exc) from exc
        logger.info("kv bucket created name=%s history=%d", name, spec.history)
        return

    _refuse_conflicts(resource, current, {"storage": StorageType.FILE})
    limits = {"max_msgs_per_subject": spec.history}
    await _update(js, resource, current, limits, replicas)


async def _existing_config(
    js: JetStreamContext, resource: _Resource
) -> StreamConfig | None:
    """The config of the resource's stream, or ``None`` when there is none."""
    try:
        info = await js.stream_info(resource.stream)
    except NotFoundError:
        return None
    except APIError as exc:
        raise _translated(resource, exc) from exc
    config: StreamConfig = info.config
    return config


async def _create_stream(
    js: JetStreamContext, resource: _Resource, config: StreamConfig
) -> None:
    try:
        await js.add_stream(config)
    except APIError as exc:
        raise _translated(resource, exc, config.subjects) from exc
    logger.info("stream created name=%s", resource.name)


def _fields(config: StreamConfig, *names: str) -> dict[str, Any]:
    """The values of ``names`` in ``config``."""
    return {name: getattr(config, name) for name in names}


def _refuse_conflicts(
    resource: _Resource, current: StreamConfig, wanted: dict[str, Any]
) -> None:
    """Raise on the first field JetStream cannot change in place."""
    for field, want in wanted.items():
        have = getattr(current, field)
        if _same(have, want):
            continue
        raise ResourceConflictError(
            f"{resource} exists with {field}={_shown(have)} but dagnats needs "
            f"{field}={_shown(want)}, which JetStream cannot change in place; "
            f"{resource.fix} or point dagnats at another NATS server"
        )


async def _update(
    js: JetStreamContext,
    resource: _Resource,
    current: StreamConfig,
    limits: dict[str, Any],
    replicas: int,
) -> None:
    """Set ``limits`` on the stream, keeping every other field as it is."""
    if replicas > (current.num_replicas or 1):
        logger.warning(
            "%s keeps its replicas name=%s replicas=%s asked=%d; "
            "raise it with `nats stream edit %s`",
            resource.kind,
            resource.name,
            current.num_replicas,
            replicas,
            resource.stream,
        )
    changes = {k: v for k, v in limits.items() if not _same(getattr(current, k), v)}
    if not changes:
        return

    try:
        await js.update_stream(current.evolve(**changes))
    except APIError as exc:
        raise _translated(resource, exc) from exc
    described = " ".join(
        f"{k}={_shown(getattr(current, k))}->{_shown(v)}" for k, v in changes.items()
    )
    logger.info("%s updated name=%s %s", resource.kind, resource.name, described)


def _same(have: Any, want: Any) -> bool:
    if isinstance(want, list):
        return sorted(have or []) == sorted(want)
    if isinstance(want, float):
        return abs(float(have or 0.0) - want) < _SECONDS_TOLERANCE
    return bool(have == want)


def _shown(value: Any) -> str:
    """``value`` for a message: enums by their wire value, with ``!r``."""
    return repr(getattr(value, "value", value))


def _translated(
    resource: _Resource, exc: APIError, subjects: list[str] | None = None
) -> ConfigurationError:
    """The dagnats error for a JetStream refusal about ``resource``."""
    if exc.err_code == _SUBJECTS_OVERLAP:
        return ResourceConflictError(
            f"{resource} cannot be created: another stream already takes subjects "
            f"{subjects!r}; find it with `nats stream ls`, then delete or change "
            "it, or point dagnats at another NATS server"
        )
    if isinstance(exc, ServiceUnavailableError):
        return ConfigurationError(
            f"JetStream did not answer about {resource}; is it enabled on this "
            "server? Start nats-server with -js"
        )
    return ConfigurationError(
        f"JetStream refused {resource}: {exc.description} (err_code={exc.err_code})"
    )
