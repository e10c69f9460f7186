"""The workflows the scenarios run, on the task types of ``bench.workers``."""

from __future__ import annotations

from dagnats import Workflow

ONE_STEP = Workflow("bench-one").task("a", "bench-noop").build()
THREE_STEPS = (
    Workflow("bench-three")
    .task("a", "bench-pass")
    .task("b", "bench-pass", depends_on=["a"])
    .task("c", "bench-pass", depends_on=["b"])
    .build()
)
HOLD = Workflow("bench-hold").task("h", "bench-hold").build()
