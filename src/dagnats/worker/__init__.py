"""Worker SDK: register handlers per task type and run them with leases."""

from dagnats.worker.context import TaskContext
from dagnats.worker.outcomes import PermanentFailure, RetryAfter
from dagnats.worker.worker import Worker

__all__ = ["PermanentFailure", "RetryAfter", "TaskContext", "Worker"]
