"""The shapes the runner and the report share: scenarios, their parts and rows."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.processes import Children

Values = dict[str, float]
"""What one repeat of one part measured, by metric name (``tasks_s``, ``p50_ms``)."""


@dataclass(slots=True)
class Session:
    """What a part needs from the runner: the child processes it starts."""

    children: Children


@dataclass(frozen=True, slots=True)
class Part:
    """One side of a scenario (``dagnats`` or ``raw``), measured on its own server.

    ``budget_s`` bounds one repeat: past it the part is cancelled and its
    cells read "timeout".
    """

    name: str
    measure: Callable[[Session], Awaitable[Values]]
    budget_s: float


@dataclass(frozen=True, slots=True)
class Target:
    """A goal printed next to a row; recorded, never asserted."""

    text: str
    is_met: Callable[[float, float | None], bool]


def at_least_raw(factor: float) -> Target:
    """dagnats ≥ ``factor`` × raw (throughput)."""
    return Target(
        f"≥ {factor:g} × raw",
        lambda ours, raw: raw is not None and ours >= factor * raw,
    )


def at_most_raw(factor: float) -> Target:
    """dagnats ≤ ``factor`` × raw (latency)."""
    return Target(
        f"≤ {factor:g} × raw",
        lambda ours, raw: raw is not None and ours <= factor * raw,
    )


def at_least(limit: float, unit: str) -> Target:
    """dagnats ≥ an absolute ``limit``."""
    return Target(f"≥ {limit:,g} {unit}", lambda ours, raw: ours >= limit)


def at_most(limit: float, unit: str) -> Target:
    """dagnats ≤ an absolute ``limit``."""
    return Target(f"≤ {limit:,g} {unit}", lambda ours, raw: ours <= limit)


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table: which measured values it shows.

    ``ours`` and ``raw`` are ``part.metric`` keys; without ``raw`` the raw
    cell shows ``raw_note``. A row with ``skipped`` set shows only that.
    """

    label: str
    unit: str
    ours: str = ""
    raw: str | None = None
    raw_note: str = "n/a"
    target: Target | None = None
    skipped: str = ""


@dataclass(frozen=True, slots=True)
class Scenario:
    """A family member of the suite: its parts, its rows, how often to repeat."""

    name: str
    parts: tuple[Part, ...]
    rows: tuple[Row, ...]
    repeats: int | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
