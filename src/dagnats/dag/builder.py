"""A Python builder for workflow definitions, equal to the JSON they mirror.

Durations given to the builder are :class:`~datetime.timedelta`, seconds as
``int`` or ``float``, or Go duration text such as ``"1h30m"``; the built
definition stores them as nanoseconds, like a parsed file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from dagnats.dag.model import RetryPolicy, WorkflowDef
from dagnats.dag.parse import parse_workflow

DurationLike = timedelta | float | str
"""A builder duration: a timedelta, seconds (int or float) or Go text."""

_RETRY_DURATION_KEYS = ("initial_delay", "max_delay")


class Workflow:
    """Builds a :class:`WorkflowDef` step by step; methods chain.

    ::

        wf = (
            Workflow("hello-world", version="1.0")
            .task("greet", "greet")
            .task("uppercase", "uppercase", depends_on=["greet"])
            .build()
        )

    Mistakes in values (unknown dependency, cycle, bad retry) are reported
    together by :meth:`build`; a duration of the wrong Python type raises at
    once.
    """

    def __init__(
        self,
        name: str,
        *,
        version: str = "",
        timeout: DurationLike | None = None,
        default_retry: RetryPolicy | Mapping[str, Any] | None = None,
        input_schema: Mapping[str, Any] | None = None,
        output_schema: Mapping[str, Any] | None = None,
    ) -> None:
        """Start a workflow called ``name``.

        ``timeout`` caps a whole run; ``default_retry`` applies to steps
        without their own ``retry`` (a :class:`RetryPolicy`, or a mapping of
        its fields with builder durations).

        Raises:
            TypeError: a duration is not a timedelta, number or string.
        """
        self._fields: dict[str, Any] = {"name": name}
        if version:
            self._fields["version"] = version
        if timeout is not None:
            self._fields["timeout"] = _duration_value(timeout)
        if default_retry is not None:
            self._fields["default_retry"] = _retry_value(default_retry)
        if input_schema is not None:
            self._fields["input_schema"] = dict(input_schema)
        if output_schema is not None:
            self._fields["output_schema"] = dict(output_schema)
        self._steps: list[dict[str, Any]] = []

    def task(
        self,
        step_id: str,
        task: str | None = None,
        *,
        depends_on: str | Iterable[str] = (),
        timeout: DurationLike | None = None,
        retry: RetryPolicy | Mapping[str, Any] | None = None,
        on_failure: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Workflow:
        """Add a step that a worker runs with the handler of ``task``.

        ``task`` defaults to ``step_id``. ``depends_on`` is one step id or
        several. ``timeout`` caps one attempt. ``retry`` is a
        :class:`RetryPolicy` or a mapping of its fields, e.g.
        ``{"max_attempts": 3, "strategy": "exponential", "initial_delay": 1,
        "multiplier": 2}`` (delays in builder durations). ``on_failure`` names
        the step run when this one fails for good.

        Raises:
            TypeError: a duration is not a timedelta, number or string.
        """
        return self._add_step(
            step_id,
            task,
            "normal",
            depends_on=depends_on,
            timeout=timeout,
            retry=retry,
            on_failure=on_failure,
            metadata=metadata,
        )

    def agent(
        self,
        step_id: str,
        task: str | None = None,
        *,
        depends_on: str | Iterable[str] = (),
        timeout: DurationLike | None = None,
        retry: RetryPolicy | Mapping[str, Any] | None = None,
        on_failure: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Workflow:
        """Add an ``agent`` step: run like :meth:`task`, typed ``agent``.

        Raises:
            TypeError: a duration is not a timedelta, number or string.
        """
        return self._add_step(
            step_id,
            task,
            "agent",
            depends_on=depends_on,
            timeout=timeout,
            retry=retry,
            on_failure=on_failure,
            metadata=metadata,
        )

    def build(self) -> WorkflowDef:
        """Validate the steps added so far and return the definition.

        Raises:
            WorkflowValidationError: every problem found, with JSON paths such
                as ``$.steps[1].depends_on[0]`` (step index = order added).
        """
        document = {**self._fields, "steps": [dict(step) for step in self._steps]}
        return parse_workflow(document, source=f"workflow {self._fields['name']!r}")

    def _add_step(
        self,
        step_id: str,
        task: str | None,
        step_type: str,
        *,
        depends_on: str | Iterable[str],
        timeout: DurationLike | None,
        retry: RetryPolicy | Mapping[str, Any] | None,
        on_failure: str | None,
        metadata: Mapping[str, str] | None,
    ) -> Workflow:
        step: dict[str, Any] = {
            "id": step_id,
            "task": step_id if task is None else task,
        }
        parents = [depends_on] if isinstance(depends_on, str) else list(depends_on)
        if parents:
            step["depends_on"] = parents
        if step_type != "normal":
            step["type"] = step_type
        if timeout is not None:
            step["timeout"] = _duration_value(timeout)
        if retry is not None:
            step["retry"] = _retry_value(retry)
        if on_failure:
            step["on_failure"] = on_failure
        if metadata is not None:
            step["metadata"] = dict(metadata)

        self._steps.append(step)
        return self


def _duration_value(value: DurationLike) -> int | str:
    """Nanoseconds of a builder duration (numbers are seconds); text as is."""
    if isinstance(value, bool):
        raise TypeError("a duration cannot be a boolean; use seconds or a timedelta")
    if isinstance(value, timedelta):
        return value // timedelta(microseconds=1) * 1_000
    if isinstance(value, int | float):
        return round(value * 1e9)
    if isinstance(value, str):
        # Go duration text is parsed by the model, which reports it with its path.
        return value
    raise TypeError(
        f"{value!r} is not a duration; use a timedelta, seconds, or text such as '30s'"
    )


def _retry_value(
    retry: RetryPolicy | Mapping[str, Any],
) -> RetryPolicy | dict[str, Any]:
    """A RetryPolicy as is, or a mapping with its delays in nanoseconds."""
    if isinstance(retry, RetryPolicy):
        return retry
    fields = dict(retry)
    for key in _RETRY_DURATION_KEYS:
        if key in fields:
            fields[key] = _duration_value(fields[key])
    return fields
