"""Worker objects run as separate processes by the crash tests.

Each handler appends one JSON line per execution to ``$DAGNATS_TEST_DIR/log``
so the test can see which process ran which attempt.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from dagnats import TaskContext, Worker

_DIR = Path(os.environ.get("DAGNATS_TEST_DIR", "."))


def _log(ctx: TaskContext, **extra: object) -> None:
    line = {
        "step": ctx.step_id,
        "retry_count": ctx.retry_count,
        "pid": os.getpid(),
        **extra,
    }
    with (_DIR / "log").open("a") as handle:
        handle.write(json.dumps(line) + "\n")


stuck_first_time = Worker(ack_wait=1.5)


@stuck_first_time.task("stuck-first-time", auto_heartbeat=False)
def stuck(ctx: TaskContext) -> dict[str, int]:
    """Hang on the first execution (the test kills us); succeed on a retry."""
    _log(ctx)
    if ctx.retry_count == 0:
        threading.Event().wait(120)  # hangs: the test kills this process
    return {"retry_count": ctx.retry_count, "pid": os.getpid()}


draining = Worker(ack_wait=2.0)


@draining.task("two-seconds")
def two_seconds(ctx: TaskContext) -> dict[str, int]:
    """Work for two seconds (a SIGTERM arrives meanwhile)."""
    _log(ctx, phase="start")
    time.sleep(2.0)
    _log(ctx, phase="end")
    return {"retry_count": ctx.retry_count, "pid": os.getpid()}
