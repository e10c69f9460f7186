"""Workflow model, parsing and validation, and the pure engine core."""

from dagnats.dag.actions import (
    Action,
    DeadLetter,
    DispatchTask,
    RecordEvent,
    SupersedeAttempt,
    Timer,
)
from dagnats.dag.builder import Workflow
from dagnats.dag.machine import (
    DEFAULT_STEP_TIMEOUT_S,
    Decision,
    Limits,
    advance,
    step_input,
    timers,
)
from dagnats.dag.model import RetryPolicy, StepDef, WorkflowDef
from dagnats.dag.parse import parse_workflow, parse_workflow_file
from dagnats.dag.schema import workflow_json_schema
from dagnats.dag.state import AttemptRecord, RunState, RunStatus, StepState, StepStatus
from dagnats.dag.validate import validate

__all__ = [
    "DEFAULT_STEP_TIMEOUT_S",
    "Action",
    "AttemptRecord",
    "DeadLetter",
    "Decision",
    "DispatchTask",
    "Limits",
    "RecordEvent",
    "RetryPolicy",
    "RunState",
    "RunStatus",
    "StepDef",
    "StepState",
    "StepStatus",
    "SupersedeAttempt",
    "Timer",
    "Workflow",
    "WorkflowDef",
    "advance",
    "parse_workflow",
    "parse_workflow_file",
    "step_input",
    "timers",
    "validate",
    "workflow_json_schema",
]
