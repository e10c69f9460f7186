"""A blocking façade over :class:`Client` for scripts and notebooks."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from dagnats.client.client import Client, WorkflowSource
from dagnats.client.deadletters import DeadLetterEntry, ReplayResult
from dagnats.client.models import Run
from dagnats.client.streaming import Chunk
from dagnats.dag import WorkflowDef
from dagnats.protocol import Event

T = TypeVar("T")


class SyncClient:
    """The same operations as :class:`Client`, blocking; use it as a context manager."""

    def __init__(self, nats_url: str | None = None) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._client = Client(nats_url)
        self._call(self._client.connect())

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection and stop the background loop."""
        self._call(self._client.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def register_workflow(self, source: WorkflowSource) -> WorkflowDef:
        """See :meth:`Client.register_workflow`."""
        return self._call(self._client.register_workflow(source))

    def start_run(self, workflow: str, input: Any = None) -> str:
        """See :meth:`Client.start_run`."""
        return self._call(self._client.start_run(workflow, input))

    def get_run(self, run_id: str) -> Run:
        """See :meth:`Client.get_run`."""
        return self._call(self._client.get_run(run_id))

    def wait(self, run_id: str, timeout: float | None = None) -> Any:
        """See :meth:`Client.wait`."""
        return self._call(self._client.wait(run_id, timeout))

    def events(self, run_id: str) -> list[Event]:
        """See :meth:`Client.events`."""
        return self._call(self._client.events(run_id))

    def list_runs(
        self, *, workflow: str | None = None, status: str | None = None
    ) -> list[Run]:
        """See :meth:`Client.list_runs`."""
        return self._call(self._client.list_runs(workflow=workflow, status=status))

    def cancel(self, run_id: str) -> bool:
        """See :meth:`Client.cancel`."""
        return self._call(self._client.cancel(run_id))

    def get_workflow(self, name: str) -> WorkflowDef:
        """See :meth:`Client.get_workflow`."""
        return self._call(self._client.get_workflow(name))

    def list_workflows(self) -> list[WorkflowDef]:
        """See :meth:`Client.list_workflows`."""
        return self._call(self._client.list_workflows())

    def start_runs(self, workflow: str, inputs: list[Any]) -> list[str]:
        """See :meth:`Client.start_runs`."""
        return self._call(self._client.start_runs(workflow, inputs))

    def run(
        self, workflow: str, input: Any = None, *, timeout: float | None = None
    ) -> Any:
        """See :meth:`Client.run`."""
        return self._call(self._client.run(workflow, input, timeout=timeout))

    def dead_letters(
        self,
        *,
        run_id: str | None = None,
        workflow: str | None = None,
        limit: int = 100,
    ) -> list[DeadLetterEntry]:
        """See :meth:`Client.dead_letters`."""
        return self._call(
            self._client.dead_letters(run_id=run_id, workflow=workflow, limit=limit)
        )

    def replay_dead_letter(self, seq: int) -> ReplayResult:
        """See :meth:`Client.replay_dead_letter`."""
        return self._call(self._client.replay_dead_letter(seq))

    def replay_run(self, run_id: str) -> ReplayResult:
        """See :meth:`Client.replay_run`."""
        return self._call(self._client.replay_run(run_id))

    def stream(self, run_id: str, step_id: str | None = None) -> list[Chunk]:
        """Every chunk of a run (or step) once it resolved (:meth:`Client.stream`)."""

        async def collect() -> list[Chunk]:
            return [chunk async for chunk in self._client.stream(run_id, step_id)]

        return self._call(collect())

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()
