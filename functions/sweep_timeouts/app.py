"""Workflow task: at the deadline, every target still open becomes timeout."""

from typing import Any

from orchestrator.observability import task_entrypoint
from orchestrator.services.context import context_for
from orchestrator.workflow import tasks


@task_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return tasks.sweep_timeouts(context_for("workflow"), event["execution_id"])
