"""The template's ``Schedule`` events, run locally: each function is invoked at its rate
with a scheduled-event payload, as EventBridge would."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from orchestrator_local.runtime import FunctionError
from orchestrator_local.template import Schedule

log = logging.getLogger(__name__)


def scheduled_event(schedule: Schedule) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": [f"arn:aws:events:us-east-1:123456789012:rule/{schedule.function}"],
        "detail": {},
    }


class Scheduler:
    """One daemon thread per schedule; :meth:`stop` ends them."""

    def __init__(self, invoke: Callable[[str, Any], Any], schedules: list[Schedule]) -> None:
        self._invoke = invoke
        self._schedules = schedules
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for schedule in self._schedules:
            thread = threading.Thread(target=self._run, args=(schedule,), daemon=True, name=schedule.function)
            thread.start()
            self._threads.append(thread)

    def _run(self, schedule: Schedule) -> None:
        while not self._stop.wait(schedule.every_seconds):
            try:
                self._invoke(schedule.function, scheduled_event(schedule))
            except FunctionError as error:  # EventBridge would retry; the next run will
                log.warning("scheduled %s failed: %s", schedule.function, error)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
