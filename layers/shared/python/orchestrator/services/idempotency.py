"""Idempotency-Key for dispatch: a retry returns the first result (Powertools idempotency).

The key is scoped to (project, caller, header value); the request body is the
payload validated on replay, so the same key with another body is 422
``idempotency_key_reused``. Records live in the single table under
``PK = "IDEMPOTENCY"`` with the table's ``ttl`` attribute (24 h).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer
from pydantic import BaseModel

from orchestrator import aws
from orchestrator.errors import IdempotencyKeyInProgress, IdempotencyKeyReused

RETENTION_SECONDS = 24 * 3600


class IdempotentRequest(BaseModel):
    key: str
    body: dict[str, Any]


class IdempotentResult(BaseModel):
    execution_id: str


def run_once(
    table_name: str, key: str, body: dict[str, Any], operation: Callable[[], str], lambda_context: Any = None
) -> tuple[str, bool]:
    """Run ``operation`` (which returns an Execution id) at most once per key.
    Returns the id and whether this call ran it (False: a replay)."""
    ran = False

    def first_time(request: IdempotentRequest) -> IdempotentResult:
        nonlocal ran
        ran = True
        return IdempotentResult(execution_id=operation())

    persistence = DynamoDBPersistenceLayer(
        table_name=table_name,
        key_attr="PK",
        sort_key_attr="SK",
        static_pk_value="IDEMPOTENCY",
        expiry_attr="ttl",
        boto3_client=aws.dynamodb(),
    )
    config = IdempotencyConfig(
        event_key_jmespath="key",
        payload_validation_jmespath="body",
        expires_after_seconds=RETENTION_SECONDS,
        raise_on_no_idempotency_key=True,
    )
    if lambda_context is not None:
        # Lets an in-progress record expire with the invocation, so a crashed try can be retried.
        config.register_lambda_context(lambda_context)
    if lambda_context is not None:
        # Lets an in-progress record expire with the invocation, so a crashed try can be retried.
        config.register_lambda_context(lambda_context)
    guarded = idempotent_function(
        data_keyword_argument="request",
        persistence_store=persistence,
        config=config,
        output_serializer=PydanticSerializer(model=IdempotentResult),
    )(first_time)
    try:
        result: IdempotentResult = guarded(request=IdempotentRequest(key=key, body=body))
    except IdempotencyValidationError as exc:
        raise IdempotencyKeyReused("This Idempotency-Key was used with a different request body.") from exc
    except IdempotencyAlreadyInProgressError as exc:
        raise IdempotencyKeyInProgress("A request with this Idempotency-Key is still in progress.") from exc
    return result.execution_id, ran
