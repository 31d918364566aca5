"""Scheduled: settle dispatches that died between taking their slot and starting their workflow."""

from typing import Any

from orchestrator.observability import task_entrypoint
from orchestrator.services.admissions import sweep_stalled_admissions
from orchestrator.services.context import context_for
from orchestrator.services.workflow_port import StepFunctionsStarter
from orchestrator.settings import require


@task_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    ctx = context_for("admission_sweep")
    workflow = StepFunctionsStarter(require(ctx.settings.state_machine_arn, "admission_sweep_not_provisioned"))
    result = sweep_stalled_admissions(ctx, workflow)
    return {"resumed": result.resumed, "abandoned": result.abandoned}
