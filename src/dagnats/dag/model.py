"""The workflow definition model: DagNats workflow JSON as frozen pydantic models.

Field names are exactly the keys of DagNats workflow files. Every duration is
stored as integer nanoseconds (what DagNats writes) and accepts Go duration
text such as ``"1h30m"`` on input. Models check shapes and types only; the
rules that need the whole graph live in :mod:`dagnats.dag.validate`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    WithJsonSchema,
    model_validator,
)

from dagnats.protocol import to_nanoseconds

STEP_TYPES: tuple[str, ...] = (
    "normal",
    "agent_loop",
    "sub_workflow",
    "agent",
    "map",
    "sleep",
    "wait_for_event",
    "approval",
    "planner",
    "respond",
)
"""The ten step types of DagNats, in its order."""

WORKER_STEP_TYPES: frozenset[str] = frozenset(
    {"normal", "agent", "agent_loop", "map", "planner"}
)
"""Step types a worker executes, so they need a ``task``."""

_MAX_DURATION_NS = 2**63 - 1  # Go's time.Duration is an int64
_GO_DURATION_PATTERN = r"^[+]?(0|((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+)$"


def _duration_ns(value: object) -> int:
    """Nanoseconds of a workflow-file duration; negative durations are refused."""
    nanoseconds = to_nanoseconds(value)
    if nanoseconds < 0:
        raise ValueError(
            f"{value!r} is negative; a duration must be zero or more, for example '30s'"
        )
    if nanoseconds > _MAX_DURATION_NS:
        raise ValueError(
            f"{value!r} is too long; a duration is at most {_MAX_DURATION_NS} ns "
            "(about 292 years), as in Go"
        )
    return nanoseconds


Duration = Annotated[
    int,
    BeforeValidator(_duration_ns),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": _GO_DURATION_PATTERN},
            ],
            "description": "integer nanoseconds, or Go duration text such as "
            "'1500ms', '30s' or '1h30m'",
        }
    ),
]
"""A duration: accepts integer nanoseconds or Go text, stored as nanoseconds."""


class _Model(BaseModel):
    """Base of every workflow model: frozen, no unknown keys, field docs."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", use_attribute_docstrings=True
    )

    @model_validator(mode="before")
    @classmethod
    def _drop_nulls(cls, data: Any) -> Any:
        # Go's decoder leaves a field at its zero value when the JSON holds
        # null, so DagNats accepts `"depends_on": null`; so do we.
        if not isinstance(data, dict):
            return data
        return {
            key: value
            for key, value in data.items()
            if value is not None or key not in cls.model_fields
        }


class RetryPolicy(_Model):
    """How often and how fast a failed step is retried (SPEC Part B 1.12)."""

    max_attempts: StrictInt = 0
    """Number of retries (not executions): a step runs at most max_attempts + 1
    times."""
    strategy: Literal["fixed", "linear", "exponential"] = "fixed"
    """Backoff shape: fixed, linear (initial × n) or exponential."""
    initial_delay: Duration = 0
    """Delay before the first retry."""
    max_delay: Duration = 0
    """Cap on any delay; 0 means no cap."""
    multiplier: StrictFloat = 0.0
    """Growth factor of the exponential strategy."""
    jitter: StrictFloat = 0.0
    """dagnats extension, 0..1: a delay d becomes d × (1 − jitter × u)."""


class SkipCondition(_Model):
    """``skip_if``: skip the step when a parent's output field compares true."""

    step_id: StrictStr = ""
    field: StrictStr = ""
    op: StrictStr = ""
    value: Any = None


class RateLimit(_Model):
    """``rate_limit``: a token bucket shared by every task of this type."""

    limit: StrictInt = 0
    period: Duration = 0


class KeyedRateLimit(_Model):
    """``keyed_rate_limit``: a token bucket per value found at ``key``."""

    key: StrictStr = ""
    limit: StrictInt = 0
    period: Duration = 0
    units: StrictInt = 0


class ConcurrencyLimit(_Model):
    """``concurrency``: caps on running runs and on in-flight steps per run."""

    max_runs: StrictInt = 0
    max_steps: StrictInt = 0


class EventMatch(_Model):
    """How an external event is matched to a run (``left op right``)."""

    left: StrictStr = ""
    op: StrictStr = ""
    right: StrictStr = ""


class CancelOn(_Model):
    """One external event that cancels the run."""

    event: StrictStr = ""
    match: EventMatch = EventMatch()
    timeout: Duration = 0


class PriorityConfig(_Model):
    """Start-order boost, in seconds, for pending runs."""

    key: StrictStr = ""
    rules: dict[StrictStr, StrictInt] = {}
    default_offset: StrictInt = 0


class SingletonConfig(_Model):
    """At most one active run per workflow, or per value found at ``key``."""

    mode: StrictStr = ""
    key: StrictStr = ""


class StepDef(_Model):
    """One step of a workflow, with the keys of a DagNats step object."""

    id: StrictStr
    """Unique within the workflow."""
    task: StrictStr = ""
    """Task type workers handle; required for worker step types."""
    depends_on: tuple[StrictStr, ...] = ()
    """Ids of the steps that must finish first."""
    retries: StrictInt = 0
    """Legacy retry count (fixed 5 s delay) used when no retry policy applies."""
    timeout: Duration = 0
    """Hard cap on one attempt; 0 means the engine's default."""
    type: StrictStr = Field(
        default="normal", json_schema_extra={"enum": list(STEP_TYPES)}
    )
    """One of the ten DagNats step types."""
    config: dict[StrictStr, Any] | None = None
    """Type-specific settings."""
    skip_if: SkipCondition | None = None
    metadata: dict[StrictStr, StrictStr] | None = None
    """Static strings handed to the worker."""
    retry: RetryPolicy | None = None
    """Retry policy of this step; overrides the workflow's default_retry."""
    worker_group: StrictStr = ""
    on_failure: StrictStr = ""
    """Id of the step run when this one fails for good."""
    compensate: StrictStr = ""
    """Id of the step that undoes this one in a saga."""
    rate_limit: RateLimit | None = None
    keyed_rate_limit: KeyedRateLimit | None = None
    max_task_concurrency: StrictInt = 0
    singleton: StrictBool = False
    required_capabilities: tuple[StrictStr, ...] | None = None


class WorkflowDef(_Model):
    """A workflow definition, with the keys of a DagNats workflow file.

    ``aux_steps`` is recomputed from the graph whenever a definition is
    validated, whatever the input says: it marks every ``on_failure`` and
    ``compensate`` target (SPEC Part A 3). ``model_copy(update=...)`` skips
    validation and so does not recompute it.
    """

    name: StrictStr
    """Identity of the workflow; the key it is registered under."""
    version: StrictStr = ""
    """Informational only."""
    steps: tuple[StepDef, ...] = ()
    default_retry: RetryPolicy | None = None
    """Retry policy of steps that have none of their own."""
    concurrency: ConcurrencyLimit | None = None
    timeout: Duration = 0
    """Deadline of a whole run, from its start; 0 means none."""
    input_schema: dict[StrictStr, Any] | None = None
    """JSON Schema of the run input (stored, not enforced yet)."""
    output_schema: dict[StrictStr, Any] | None = None
    """JSON Schema of the run output (stored, not enforced)."""
    aux_steps: dict[StrictStr, StrictBool] = {}
    """Computed: steps that run only as on_failure or compensate targets."""
    idempotency_key: StrictStr = ""
    sticky: StrictStr = ""
    priority: PriorityConfig | None = None
    cancel_on: tuple[CancelOn, ...] = ()
    singleton: SingletonConfig | None = None

    _steps_by_id: dict[str, StepDef] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _derive_graph_facts(self) -> WorkflowDef:
        by_id: dict[str, StepDef] = {}
        for step in self.steps:
            by_id.setdefault(step.id, step)
        targets = {
            target
            for step in self.steps
            for target in (step.on_failure, step.compensate)
            if target != step.id
        }
        aux = {step_id: True for step_id in by_id if step_id in targets}

        # The model is frozen; aux_steps is derived, never taken from input.
        object.__setattr__(self, "aux_steps", aux)
        self._steps_by_id = by_id
        return self

    def step(self, step_id: str) -> StepDef:
        """Return the step with this id.

        Raises:
            KeyError: no step has this id.
        """
        try:
            return self._steps_by_id[step_id]
        except KeyError:
            raise KeyError(
                f"workflow {self.name!r} has no step {step_id!r}; "
                f"its steps are {', '.join(self._steps_by_id) or 'none'}"
            ) from None

    def is_aux(self, step_id: str) -> bool:
        """Whether the step runs only as an on_failure or compensate target."""
        return self.aux_steps.get(step_id, False)

    def dependents(self, step_id: str) -> list[str]:
        """Ids of the steps that list ``step_id`` in depends_on, in file order."""
        return [s.id for s in self.steps if step_id in s.depends_on]

    def entry_steps(self) -> list[str]:
        """Ids of the steps that start a run: no dependencies, not auxiliary."""
        return [s.id for s in self.steps if not s.depends_on and not self.is_aux(s.id)]

    def sink_steps(self) -> list[str]:
        """Ids of the non-auxiliary steps no other non-auxiliary step depends on."""
        needed = {
            parent
            for s in self.steps
            if not self.is_aux(s.id)
            for parent in s.depends_on
        }
        return [
            s.id for s in self.steps if not self.is_aux(s.id) and s.id not in needed
        ]

    def to_json_dict(self) -> dict[str, Any]:
        """The definition as a DagNats workflow file (a JSON-ready dict).

        Durations are integer nanoseconds and keys at their default value are
        left out, so DagNats reads the result and ``parse_workflow`` gives back
        an equal definition.
        """
        return self.model_dump(mode="json", exclude_defaults=True)
