"""A pool of worker processes, each one a warm "Lambda container".

Every worker loads handlers on first use and runs one event at a time, like
a Lambda execution environment; the pool gives the local server real
concurrency across requests and workflow tasks.
"""

from __future__ import annotations

import multiprocessing
import signal
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from orchestrator_local.runtime import FunctionError, InProcessRuntime

_runtime: InProcessRuntime | None = None


def _initialize() -> None:
    global _runtime  # noqa: PLW0603 - one runtime per worker process
    # Ctrl-C reaches the whole process group; the server shuts the pool down.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _runtime = InProcessRuntime()


def _run(logical_id: str, event: Any) -> tuple[str, Any]:
    assert _runtime is not None
    try:
        return "ok", _runtime.invoke(logical_id, event)
    except FunctionError as error:
        return "error", error.payload()


class WorkerPool:
    def __init__(self, workers: int) -> None:
        self._executor = ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=_initialize
        )

    def invoke(self, logical_id: str, event: Any) -> Any:
        status, value = self._executor.submit(_run, logical_id, event).result()
        if status == "error":
            raise FunctionError(value["errorType"], value["errorMessage"])
        return value

    def warm_up(self, logical_id: str, event: Any) -> None:
        self.invoke(logical_id, event)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
