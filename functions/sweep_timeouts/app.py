"""Workflow task: mark targets still open at the deadline as timeout.

Declared in the template so the deployed shape is complete; the behaviour
lands with the dispatch and callback features. Until then, an invocation
fails loudly (no Execution can be created yet, so nothing invokes it).
"""

from typing import Any

from orchestrator.errors import NotProvisioned
from orchestrator.observability import task_entrypoint


@task_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    raise NotProvisioned("workflow_not_provisioned")
