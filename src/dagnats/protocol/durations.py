"""Durations as DagNats writes them: integer nanoseconds or Go duration text."""

from __future__ import annotations

import re
from datetime import timedelta

_UNIT_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_go_duration(text: str) -> int:
    """Return the nanoseconds of a Go duration string such as ``1h30m``.

    Raises:
        ValueError: the text is not a Go duration (the message shows examples).
    """
    stripped = text.strip()
    sign = -1 if stripped.startswith("-") else 1
    body = stripped.lstrip("+-")
    if body == "0":
        return 0
    pos, total = 0, 0.0
    for match in _PART.finditer(body):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_NS[match.group(2)]
        pos = match.end()
    if not body or pos != len(body):
        raise ValueError(
            f"{text!r} is not a duration; use integer nanoseconds or a Go "
            "duration such as '1500ms', '30s' or '1h30m'"
        )
    return sign * round(total)


def to_nanoseconds(value: object) -> int:
    """Accept integer nanoseconds, Go duration text or a ``timedelta``.

    Raises:
        ValueError: any other value.
    """
    if isinstance(value, bool):
        raise ValueError("a duration cannot be a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return parse_go_duration(value)
    if isinstance(value, timedelta):
        return round(value.total_seconds() * 1e9)
    raise ValueError(
        f"{value!r} is not a duration; use integer nanoseconds or a Go duration "
        "such as '30s'"
    )


def seconds(nanoseconds: int) -> float:
    """Nanoseconds as float seconds."""
    return nanoseconds / 1e9


def format_duration(nanoseconds: int) -> str:
    """A short human form, e.g. ``1h30m`` or ``250ms``."""
    if nanoseconds % 1_000_000_000:
        return f"{nanoseconds / 1e6:g}ms"
    total = nanoseconds // 1_000_000_000
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    parts.append(f"{secs}s" if secs or not (hours or minutes) else "")
    return "".join(parts)
