"""Keep what the engine writes within one NATS message.

A run's input and its steps' outputs can each be close to the server's
max payload; a snapshot, a dead letter or a record holding several of them
can then be too large to store, and retrying cannot help. Such values are
replaced by a small marker (the full value stays in the event the worker
stored), so the engine never loops on a write that can never succeed.
"""

from __future__ import annotations

import json
from typing import Any

_LARGE_VALUE_BYTES = 16 * 1024


def truncated(value: Any) -> dict[str, Any]:
    """The marker that stands for a value too large to repeat."""
    size = len(json.dumps(value))
    return {"truncated": True, "bytes": size, "see": "dagnats run events"}


def fit_snapshot(data: dict[str, Any], limit: int) -> bytes:
    """``data`` as JSON within ``limit`` bytes, large values truncated."""
    body = json.dumps(data).encode()
    if len(body) <= limit:
        return body
    data = dict(data)
    for key in ("input", "output"):
        data[key] = _small(data.get(key))
    steps = {}
    for step_id, step in data.get("steps", {}).items():
        steps[step_id] = {**step, "output": _small(step.get("output"))}
    data["steps"] = steps
    return json.dumps(data).encode()


def fits(body: bytes, limit: int) -> bool:
    """True when ``body`` fits in one message."""
    return len(body) <= limit


def _small(value: Any) -> Any:
    if value is None or len(json.dumps(value)) <= _LARGE_VALUE_BYTES:
        return value
    return truncated(value)
