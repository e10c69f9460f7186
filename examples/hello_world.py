"""Handlers for the DagNats hello-world workflow (greet → uppercase).

Run it with ``dagnats worker examples.hello_world:worker``.
"""

from __future__ import annotations

from dagnats import TaskContext, Worker

worker = Worker()


@worker.task("greet")
def greet(ctx: TaskContext, name: str) -> str:
    """Return ``Hello, <name>!`` for a JSON string name."""
    return f"Hello, {name}!"


@worker.task("uppercase")
async def uppercase(ctx: TaskContext, text: str) -> str:
    """Return the input upper-cased."""
    return text.upper()
