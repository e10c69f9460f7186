"""Handler registration: sync or async functions, optionally with typed input."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, get_type_hints

from pydantic import BaseModel, TypeAdapter, ValidationError

from dagnats.errors import ConfigurationError
from dagnats.protocol import MAX_NAME_LENGTH
from dagnats.worker.context import TaskContext
from dagnats.worker.outcomes import PermanentFailure

HandlerFunc = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class Handler:
    """A registered handler and its per-task-type options."""

    task: str
    func: HandlerFunc
    ack_wait_s: float | None
    auto_heartbeat: bool
    is_async: bool
    input_adapter: TypeAdapter[Any] | None

    async def invoke(self, ctx: TaskContext, executor: Executor) -> Any:
        """Run the handler; returns its JSON-able output.

        Raises:
            PermanentFailure: the input does not fit the annotated type or the
                output is not JSON.
        """
        args: list[Any] = [ctx]
        if self.input_adapter is not None:
            args.append(_validated_input(self.input_adapter, ctx.input))
        if self.is_async:
            try:
                result = await self.func(*args)
            except (KeyboardInterrupt, SystemExit) as exc:
                raise HandlerExitError(exc) from exc
        else:
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(executor, _guarded, self.func, args)
        return _json_output(result)


class HandlerExitError(Exception):
    """A handler raised KeyboardInterrupt or SystemExit: a failure of the step.

    Left alone, either would stop the whole worker (and then the next one
    that receives the redelivered task).
    """

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__} raised in a handler: {cause}")
        self.cause_type = type(cause).__name__


def _guarded(func: HandlerFunc, args: list[Any]) -> Any:
    """Run a sync handler in its thread; exits become ordinary exceptions."""
    try:
        return func(*args)
    except (KeyboardInterrupt, SystemExit) as exc:
        raise HandlerExitError(exc) from exc


def make_handler(
    task: str,
    func: HandlerFunc,
    *,
    ack_wait: float | timedelta | None = None,
    auto_heartbeat: bool = True,
) -> Handler:
    """Check ``func``'s signature and wrap it.

    Raises:
        ConfigurationError: a bad task name, ack_wait or signature.
    """
    if not task or len(task) > MAX_NAME_LENGTH:
        raise ConfigurationError(
            f"task name {task!r} must be 1 to {MAX_NAME_LENGTH} characters"
        )
    ack_wait_s = _seconds(ack_wait) if ack_wait is not None else None
    if ack_wait_s is not None and ack_wait_s <= 0:
        raise ConfigurationError(
            f"ack_wait for {task!r} must be positive, got {ack_wait!r}"
        )
    return Handler(
        task=task,
        func=func,
        ack_wait_s=ack_wait_s,
        auto_heartbeat=auto_heartbeat,
        is_async=inspect.iscoroutinefunction(func),
        input_adapter=_input_adapter(task, func),
    )


def _input_adapter(task: str, func: HandlerFunc) -> TypeAdapter[Any] | None:
    params = list(inspect.signature(func).parameters.values())
    if len(params) == 1:
        return None
    if len(params) != 2:
        raise ConfigurationError(
            f"handler for {task!r} must take (ctx) or (ctx, value: Type); "
            f"it takes {len(params)} parameters"
        )
    hints = get_type_hints(func)
    annotation = hints.get(params[1].name, Any)
    return TypeAdapter(annotation)


def _validated_input(adapter: TypeAdapter[Any], value: Any) -> Any:
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        raise PermanentFailure(
            f"input does not match the handler's type: {exc}"
        ) from exc


def _json_output(result: Any) -> Any:
    if isinstance(result, BaseModel):
        return result.model_dump(mode="json")
    try:
        json.dumps(result)
    except (TypeError, ValueError) as exc:
        raise PermanentFailure(
            "handler returned a value that is not JSON: "
            f"{type(result).__name__} ({exc})"
        ) from exc
    return result


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
