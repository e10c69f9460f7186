"""A long task that heartbeats, checkpoints its progress and streams output.

    dagnats worker examples.long_task:worker
    dagnats workflow register examples/workflows/long-task.json
    dagnats run start long-task 20 --wait
    dagnats run logs RUN_ID --follow            # in another terminal

Kill the worker (even with SIGKILL) half-way and start it again: the task is
redelivered after its lease (AckWait) runs out, ``retry_count`` is 1, and
the handler resumes from its last checkpoint instead of starting over.
"""

from __future__ import annotations

import time

from dagnats import TaskContext, Worker

worker = Worker(ack_wait=10.0)


@worker.task("count-slowly")
def count_slowly(ctx: TaskContext, total: int) -> dict[str, int]:
    """Count to ``total``, one per second, surviving crashes."""
    state = ctx.load_checkpoint() or {"done": 0}
    for number in range(state["done"] + 1, total + 1):
        if ctx.cancelled:
            break
        time.sleep(1.0)  # the real work; automatic heartbeats keep the lease
        ctx.put_stream(f"counted {number} of {total} (attempt {ctx.attempt})\n")
        ctx.checkpoint({"done": number})
    return {"counted": total, "attempts": ctx.attempt}
