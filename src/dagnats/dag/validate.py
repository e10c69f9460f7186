"""Validation of a workflow definition against the rules a single model cannot see.

Models check types; this module checks names, references, the graph (cycles,
failure targets), ranges, and which features this release executes. Every
problem is reported with its JSON path, never only the first one.
"""

from __future__ import annotations

import difflib
import json
import unicodedata
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel

from dagnats.dag.model import (
    STEP_TYPES,
    WORKER_STEP_TYPES,
    RetryPolicy,
    StepDef,
    WorkflowDef,
)
from dagnats.errors import Problem
from dagnats.protocol import MAX_NAME_LENGTH

# The supported-feature gate. Each entry is refused with "not supported yet";
# remove an entry once the engine executes that feature.
UNSUPPORTED_STEP_TYPES: frozenset[str] = frozenset(
    {
        "sleep",
        "wait_for_event",
        "approval",
        "map",
        "sub_workflow",
        "agent_loop",
        "planner",
        "respond",
    }
)
UNSUPPORTED_FIELDS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "step": frozenset(
            {
                "skip_if",
                "worker_group",
                "compensate",
                "rate_limit",
                "keyed_rate_limit",
                "max_task_concurrency",
                "singleton",
            }
        ),
        "workflow": frozenset(
            {
                "concurrency",
                "sticky",
                "priority",
                "cancel_on",
                "singleton",
                "idempotency_key",
            }
        ),
    }
)

MAX_RETRY_ATTEMPTS = 100_000  # DagNats's bound on retry.max_attempts
MAX_STEP_TIMEOUT_NS = 24 * 3600 * 1_000_000_000  # DagNats caps a step at 24 h
_MAX_MAP_ITEMS = 10_000


def validate(defn: WorkflowDef) -> list[Problem]:
    """Return every problem of ``defn``; an empty list means it is valid.

    Covers names, unique ids, dependencies, cycles, on_failure/compensate
    targets, tasks of worker steps, retry ranges, step timeouts, and the
    features this release does not execute yet.
    """
    problems = _workflow_problems(defn)
    first_index: dict[str, int] = {}
    for index, step in enumerate(defn.steps):
        first_index.setdefault(step.id, index)
    for index, step in enumerate(defn.steps):
        problems += _step_problems(defn, index, step, first_index)
    problems += _cycle_problems(defn, first_index)

    return problems


def _workflow_problems(defn: WorkflowDef) -> list[Problem]:
    problems: list[Problem] = []
    name_problem = _name_problem(defn.name, "the workflow name")
    if name_problem:
        problems.append(Problem("$.name", name_problem))
    if not defn.steps:
        problems.append(
            Problem("$.steps", "a workflow needs at least one step; add a step")
        )
    if defn.default_retry is not None:
        problems += _retry_problems(defn.default_retry, "$.default_retry")
    problems += _unsupported_field_problems(defn, "workflow", "$")

    return problems


def _step_problems(
    defn: WorkflowDef, index: int, step: StepDef, first_index: dict[str, int]
) -> list[Problem]:
    path = f"$.steps[{index}]"
    problems = _identity_problems(index, step, first_index)
    problems += _type_problems(step, path)
    problems += _dependency_problems(defn, step, path, first_index)
    problems += _target_problems(defn, step, path)

    if step.retries < 0:
        problems.append(
            Problem(f"{path}.retries", f"{step.retries!r} is negative; use 0 or more")
        )
    if step.retry is not None:
        problems += _retry_problems(step.retry, f"{path}.retry")
    if step.timeout > MAX_STEP_TIMEOUT_NS:
        problems.append(
            Problem(
                f"{path}.timeout",
                f"{step.timeout!r} ns is longer than 24 h; use at most "
                f"{MAX_STEP_TIMEOUT_NS} (or '24h')",
            )
        )
    if step.rate_limit is not None and step.keyed_rate_limit is not None:
        problems.append(
            Problem(
                f"{path}.keyed_rate_limit",
                "a step takes rate_limit or keyed_rate_limit, not both; keep one",
            )
        )
    problems += _unsupported_field_problems(step, "step", path)

    return problems


def _identity_problems(
    index: int, step: StepDef, first_index: dict[str, int]
) -> list[Problem]:
    path = f"$.steps[{index}]"
    problems: list[Problem] = []
    id_problem = _name_problem(step.id, "the step id")
    if id_problem:
        problems.append(Problem(f"{path}.id", id_problem))
    if first_index[step.id] != index:
        problems.append(
            Problem(
                f"{path}.id",
                f"duplicate step id {step.id!r} "
                f"(also at $.steps[{first_index[step.id]}])",
            )
        )
    if step.task:
        task_problem = _name_problem(step.task, "the task")
        if task_problem:
            problems.append(Problem(f"{path}.task", task_problem))
    elif step.type in WORKER_STEP_TYPES:
        problems.append(
            Problem(
                f"{path}.task",
                f"step {step.id!r} has no task; {step.type!r} steps need the "
                f'task type their workers handle, for example "task": '
                f"{json.dumps(step.id, ensure_ascii=False)}",
            )
        )

    return problems


def _type_problems(step: StepDef, path: str) -> list[Problem]:
    if step.type not in STEP_TYPES:
        return [
            Problem(
                f"{path}.type",
                f"unknown step type {step.type!r}{_did_you_mean(step.type, STEP_TYPES)}"
                f"; use one of: {', '.join(STEP_TYPES)}",
            )
        ]
    problems: list[Problem] = []
    if step.type in UNSUPPORTED_STEP_TYPES:
        supported = [t for t in STEP_TYPES if t not in UNSUPPORTED_STEP_TYPES]
        problems.append(
            Problem(
                f"{path}.type",
                f"step type {step.type!r} is not supported yet; this release runs "
                f"only {' and '.join(repr(t) for t in supported)} steps",
            )
        )
    check = _CONFIG_CHECKS.get(step.type)
    config_problem = check(step) if check else None
    if config_problem:
        problems.append(Problem(f"{path}.config", config_problem))

    return problems


def _dependency_problems(
    defn: WorkflowDef, step: StepDef, path: str, first_index: dict[str, int]
) -> list[Problem]:
    problems: list[Problem] = []
    for position, parent in enumerate(step.depends_on):
        where = f"{path}.depends_on[{position}]"
        if parent == step.id:
            problems.append(
                Problem(
                    where,
                    f"step {step.id!r} depends on itself; remove {parent!r} "
                    "from its depends_on",
                )
            )
        elif parent not in first_index:
            problems.append(
                Problem(
                    where,
                    f"unknown step {parent!r}{_did_you_mean(parent, first_index)}; "
                    "depends_on must name steps of this workflow",
                )
            )
        elif defn.is_aux(parent):
            problems.append(
                Problem(
                    where,
                    f"{parent!r} is an on_failure/compensate step, which runs only "
                    f"after a failure, so {step.id!r} would never start; remove "
                    "the dependency",
                )
            )

    return problems


def _target_problems(defn: WorkflowDef, step: StepDef, path: str) -> list[Problem]:
    problems: list[Problem] = []
    for key in ("on_failure", "compensate"):
        target = getattr(step, key)
        if not target:
            continue
        where = f"{path}.{key}"
        if target == step.id:
            problems.append(
                Problem(
                    where,
                    f"step {step.id!r} names itself as its {key} step; name "
                    "another step",
                )
            )
        elif target not in defn.aux_steps:
            known = [s.id for s in defn.steps]
            problems.append(
                Problem(
                    where,
                    f"unknown step {target!r}{_did_you_mean(target, known)}; "
                    f"{key} must name a step of this workflow",
                )
            )
        elif defn.step(target).depends_on:
            problems.append(
                Problem(
                    where,
                    f"{key} step {target!r} has depends_on "
                    f"{list(defn.step(target).depends_on)!r}, but it runs only "
                    "after a failure; remove its depends_on",
                )
            )

    return problems


def _retry_problems(policy: RetryPolicy, path: str) -> list[Problem]:
    problems: list[Problem] = []
    attempts = policy.max_attempts
    if not 0 <= attempts <= MAX_RETRY_ATTEMPTS:
        problems.append(
            Problem(
                f"{path}.max_attempts",
                f"{attempts!r} is out of range; max_attempts counts retries and "
                f"must be 0 to {MAX_RETRY_ATTEMPTS}",
            )
        )
    jitter = policy.jitter
    if not 0.0 <= jitter <= 1.0:
        problems.append(
            Problem(
                f"{path}.jitter",
                f"{jitter!r} is out of range; jitter is a fraction from 0 to 1",
            )
        )

    return problems


def _unsupported_field_problems(
    model: BaseModel, scope: str, path: str
) -> list[Problem]:
    problems: list[Problem] = []
    fields = type(model).model_fields
    for name, info in fields.items():
        if name not in UNSUPPORTED_FIELDS[scope]:
            continue
        value = getattr(model, name)
        if value == info.get_default(call_default_factory=True):
            continue
        problems.append(
            Problem(
                f"{path}.{name}",
                f"{name} is not supported yet (got {_shown(value)}); remove the key",
            )
        )

    return problems


def _cycle_problems(defn: WorkflowDef, first_index: dict[str, int]) -> list[Problem]:
    children: dict[str, list[str]] = {step_id: [] for step_id in first_index}
    for step in defn.steps:
        for parent in step.depends_on:
            if parent in children and parent != step.id:
                children[parent].append(step.id)
    suspects = _steps_blocked_by_cycles(children)

    problems: list[Problem] = []
    reported: set[str] = set()
    for step_id in first_index:
        if step_id not in suspects or step_id in reported:
            continue
        cycle = _shortest_cycle(step_id, children, suspects)
        if cycle is None:
            continue
        reported.update(cycle)
        problems.append(
            Problem(
                f"$.steps[{first_index[step_id]}].depends_on",
                f"dependency cycle {' → '.join(cycle)}; each step waits for the one "
                "before it, so none can start; remove one of these dependencies",
            )
        )

    return problems


def _steps_blocked_by_cycles(children: dict[str, list[str]]) -> set[str]:
    """Steps Kahn's algorithm cannot order: on a cycle or downstream of one."""
    waiting = dict.fromkeys(children, 0)
    for targets in children.values():
        for child in targets:
            waiting[child] += 1
    ready = deque(step_id for step_id, count in waiting.items() if count == 0)
    ordered: set[str] = set()
    while ready:
        step_id = ready.popleft()
        ordered.add(step_id)
        for child in children[step_id]:
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)

    return set(children) - ordered


def _shortest_cycle(
    start: str, children: dict[str, list[str]], allowed: set[str]
) -> list[str] | None:
    """The shortest path start → … → start, or None when start is on no cycle."""
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in children[node]:
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if child in allowed and child not in came_from:
                came_from[child] = node
                queue.append(child)

    return None


def _name_problem(value: str, what: str) -> str | None:
    """Why ``value`` is not a usable step id, task or workflow name, if it is not."""
    if not value:
        return f"{what} is empty; use 1 to {MAX_NAME_LENGTH} characters"
    if len(value) > MAX_NAME_LENGTH:
        return (
            f"{what} {value[:24]!r}… is {len(value)} characters long; "
            f"use at most {MAX_NAME_LENGTH}"
        )
    if any(unicodedata.category(char) == "Cc" for char in value):
        return f"{what} {value!r} contains a control character; remove it"
    return None


def _did_you_mean(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _shown(value: Any) -> str:
    if isinstance(value, BaseModel):
        return json.dumps(value.model_dump(mode="json", exclude_defaults=True))
    if isinstance(value, tuple) and all(isinstance(v, BaseModel) for v in value):
        return json.dumps(
            [v.model_dump(mode="json", exclude_defaults=True) for v in value]
        )
    return repr(value)


def _config_value(step: StepDef, key: str) -> Any:
    return (step.config or {}).get(key)


def _needs_positive_int(
    key: str, upper: int | None = None
) -> Callable[[StepDef], str | None]:
    def check(step: StepDef) -> str | None:
        value = _config_value(step, key)
        valid = isinstance(value, int) and not isinstance(value, bool) and value > 0
        if valid and (upper is None or value <= upper):
            return None
        bound = f" up to {upper}" if upper else ""
        return (
            f"{step.type} steps need config.{key}, a whole number above 0"
            f"{bound}; got {value!r}"
        )

    return check


def _needs_text(key: str) -> Callable[[StepDef], str | None]:
    def check(step: StepDef) -> str | None:
        value = _config_value(step, key)
        if isinstance(value, str) and value:
            return None
        return f"{step.type} steps need config.{key}, a non-empty string; got {value!r}"

    return check


def _map_config_problem(step: StepDef) -> str | None:
    if len(step.depends_on) != 1:
        return (
            "a map step maps over the output of exactly one step; give it one "
            f"depends_on entry (it has {len(step.depends_on)})"
        )
    return _needs_positive_int("max_items", _MAX_MAP_ITEMS)(step)


def _sleep_config_problem(step: StepDef) -> str | None:
    forms = [
        k for k in ("duration", "cron", "until_input_path") if _config_value(step, k)
    ]
    if len(forms) == 1:
        return None
    return (
        "a sleep step needs exactly one of config.duration, config.cron and "
        f"config.until_input_path; it has {forms or 'none'}"
    )


def _respond_config_problem(step: StepDef) -> str | None:
    if step.config is not None:
        return None
    return 'a respond step needs a config object, even an empty one: "config": {}'


# Cheap structural checks of step types the gate refuses, kept so a file's
# mistakes are all reported at once; the full rules come with each type.
_CONFIG_CHECKS: Mapping[str, Callable[[StepDef], str | None]] = MappingProxyType(
    {
        "agent_loop": _needs_positive_int("max_iterations"),
        "map": _map_config_problem,
        "sub_workflow": _needs_text("workflow"),
        "sleep": _sleep_config_problem,
        "wait_for_event": _needs_text("event"),
        "approval": _needs_text("subject"),
        "respond": _respond_config_problem,
    }
)
