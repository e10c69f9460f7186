"""Every scenario of the suite, in the order they run."""

from __future__ import annotations

from bench.model import Scenario
from bench.scenarios.queue import drain_scenario, enqueue_scenario
from bench.scenarios.runs import fanout_scenario, latency_scenario, three_steps_scenario
from bench.scenarios.system import heartbeats_scenario, memory_scenario, replay_scenario

_FAMILY = (
    drain_scenario,
    enqueue_scenario,
    latency_scenario,
    three_steps_scenario,
    fanout_scenario,
    heartbeats_scenario,
    replay_scenario,
    memory_scenario,
)


def all_scenarios(quick: bool) -> list[Scenario]:
    """The scenarios, sized for a default run or for ``--quick``."""
    return [make(quick) for make in _FAMILY]


def names() -> list[str]:
    """The scenario names ``--only`` accepts."""
    return [scenario.name for scenario in all_scenarios(quick=True)]


__all__ = ["all_scenarios", "names"]
