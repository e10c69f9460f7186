"""Run scenarios: each part repeated and time-boxed; failures recorded, not raised."""

from __future__ import annotations

import asyncio
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.model import Part, Scenario, Session, Values


@dataclass(slots=True)
class Outcome:
    """What the repeats of one scenario produced."""

    scenario: Scenario
    repeats: int
    samples: dict[str, list[float]] = field(default_factory=dict)
    timeouts: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    def add(self, part: str, values: Values) -> None:
        """Record one repeat of ``part``."""
        for metric, value in values.items():
            self.samples.setdefault(f"{part}.{metric}", []).append(value)

    def failures(self, key: str) -> tuple[int, int]:
        """(timeouts, errors) of the part that measures ``key``."""
        part = key.split(".", 1)[0]
        return self.timeouts[part], self.errors[part]


async def run_scenarios(
    scenarios: list[Scenario],
    repeats: int,
    session: Session,
    progress: Callable[[str], None],
) -> list[Outcome]:
    """Run every scenario ``repeats`` times (or its own count), one part at a time."""
    outcomes = []
    for scenario in scenarios:
        count = scenario.repeats or repeats
        outcome = Outcome(scenario, count if scenario.parts else 0)
        for index in range(outcome.repeats):
            for part in scenario.parts:
                progress(f"{scenario.name} {index + 1}/{count} {part.name}")
                await _run_part(part, session, outcome, progress)
        outcomes.append(outcome)
    return outcomes


async def _run_part(
    part: Part, session: Session, outcome: Outcome, progress: Callable[[str], None]
) -> None:
    session.children.forget()
    started = time.monotonic()
    try:
        values = await asyncio.wait_for(part.measure(session), part.budget_s)
    except TimeoutError as exc:
        outcome.timeouts[part.name] += 1
        reason = str(exc) or f"budget of {part.budget_s:g} s exceeded"
        progress(f"  timeout: {reason}")
        _show_child_logs(session, progress)
    except Exception:  # noqa: BLE001 - one broken part must not stop the suite
        outcome.errors[part.name] += 1
        progress(f"  error:\n{traceback.format_exc()}")
        _show_child_logs(session, progress)
    else:
        outcome.add(part.name, values)
        shown = ", ".join(f"{key}={value:,.2f}" for key, value in values.items())
        progress(f"  {shown} ({time.monotonic() - started:.1f} s)")


def _show_child_logs(session: Session, progress: Callable[[str], None]) -> None:
    for child in session.children.current:
        progress(f"  --- {child.role} pid={child.pid} ({child.log_path}):")
        progress(child.log_tail())
