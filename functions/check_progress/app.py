"""Workflow task: are all targets terminal? (exact counters; keeps the status index current)."""

from typing import Any

from orchestrator.observability import task_entrypoint
from orchestrator.services.context import context_for
from orchestrator.workflow import tasks


@task_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return tasks.check_progress(context_for("workflow"), event["execution_id"])
