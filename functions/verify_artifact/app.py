"""S3 ObjectCreated on the artifact bucket: hash the uploaded bytes and serve them (verified)
or delete them (rejected) — an artifact that is not what its admin declared is never served."""

from typing import Any

from orchestrator.observability import task_entrypoint
from orchestrator.services import artifacts
from orchestrator.services.context import context_for
from orchestrator.store.artifacts import ArtifactObjects


@task_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    ctx = context_for("artifact_verification")
    # An error (the bucket or the table unavailable) fails the invocation: S3's asynchronous
    # invocation retries it, and every step is conditional, so a retry is safe.
    outcomes = [
        artifacts.verify_upload(ctx, ArtifactObjects(bucket), key, version_id)
        for bucket, key, version_id in artifacts.object_records(event)
    ]
    return {"verified": [{"key": o.key, "outcome": o.outcome} for o in outcomes]}
