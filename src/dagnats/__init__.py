"""dagnats: durable DAG workflows and a task queue on NATS JetStream."""

from dagnats.client import Client, SyncClient
from dagnats.dag import RetryPolicy, Workflow, WorkflowDef, parse_workflow
from dagnats.errors import (
    DagnatsError,
    LeaseLostError,
    NatsUnavailableError,
    RunFailedError,
    RunNotFoundError,
    WorkflowNotFoundError,
    WorkflowValidationError,
)
from dagnats.worker import PermanentFailure, RetryAfter, TaskContext, Worker

__all__ = [
    "Client",
    "DagnatsError",
    "LeaseLostError",
    "NatsUnavailableError",
    "PermanentFailure",
    "RetryAfter",
    "RetryPolicy",
    "RunFailedError",
    "RunNotFoundError",
    "SyncClient",
    "TaskContext",
    "Worker",
    "Workflow",
    "WorkflowDef",
    "WorkflowNotFoundError",
    "WorkflowValidationError",
    "parse_workflow",
]
__version__ = "0.1.0"
