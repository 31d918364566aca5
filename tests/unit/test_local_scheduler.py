"""Local mode runs the template's Schedule events as EventBridge would."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from orchestrator_local.runtime import FunctionError
from orchestrator_local.scheduler import Scheduler
from orchestrator_local.template import Schedule, rate_seconds


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [("rate(1 minute)", 60), ("rate(5 minutes)", 300), ("rate(2 hours)", 7200), ("rate(1 day)", 86400)],
)
def test_rate_expressions_become_seconds(expression: str, seconds: int) -> None:
    assert rate_seconds(expression) == seconds


def test_other_schedule_expressions_are_refused() -> None:
    with pytest.raises(ValueError, match="unsupported schedule expression"):
        rate_seconds("cron(0 12 * * ? *)")


def test_each_schedule_invokes_its_function_at_its_rate_until_stopped() -> None:
    calls: list[tuple[str, Any]] = []
    twice = threading.Event()

    def invoke(function: str, event: Any) -> Any:
        calls.append((function, event))
        if len(calls) == 2:
            twice.set()
        raise FunctionError("Boom", "a failed run does not stop the schedule")

    scheduler = Scheduler(invoke, [Schedule("SweepAdmissionsFunction", 1)])
    started = time.monotonic()
    scheduler.start()
    assert twice.wait(timeout=5)
    scheduler.stop()
    assert time.monotonic() - started >= 2  # not before its rate
    count = len(calls)
    time.sleep(1.2)
    assert len(calls) == count  # stopped
    function, event = calls[0]
    assert function == "SweepAdmissionsFunction"
    assert event["source"] == "aws.events" and event["detail-type"] == "Scheduled Event"
