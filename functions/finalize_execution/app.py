"""Workflow task: final aggregate, capacity slot released exactly once, outcome announced."""

from typing import Any

from orchestrator.observability import task_entrypoint
from orchestrator.services.context import context_for
from orchestrator.workflow import tasks


@task_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return tasks.finalize(context_for("workflow"), event["execution_id"], failed_step=event.get("failed_step"))
