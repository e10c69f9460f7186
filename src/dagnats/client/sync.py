"""A blocking façade over :class:`Client` for scripts and notebooks."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from dagnats.client.client import Client, WorkflowSource
from dagnats.client.models import Run
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

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()
