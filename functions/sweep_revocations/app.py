"""Scheduled: strip again the key copies a dispatch racing a deregistration may have written."""

from typing import Any

from orchestrator.observability import task_entrypoint
from orchestrator.services.context import context_for
from orchestrator.services.nodes import sweep_revocations


@task_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"stripped": sweep_revocations(context_for("revocation_sweep"))}
