"""Workflow task: append one action_request event per target to the nodes' streams, in batches."""

from typing import Any

from orchestrator.observability import task_entrypoint
from orchestrator.services.context import context_for
from orchestrator.workflow import tasks


@task_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = tasks.fan_out(context_for("workflow"), event["execution_id"])
    return {"targets": result.targets, "events": result.events, "requests": result.requests}
