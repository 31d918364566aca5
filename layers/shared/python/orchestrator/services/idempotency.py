"""Idempotency-Key for dispatch: a retry returns the first result (Powertools idempotency).

The key is scoped to (project, caller, header value); the request body is the
payload validated on replay, so the same key with another body is 422
``idempotency_key_reused``. Records live in the single table under
``PK = "IDEMPOTENCY"`` with the table's ``ttl`` attribute (24 h).
"""

from __future__ import annotations

import functools
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


# Configured once per process, as Powertools' examples do; the persistence layer is made on
# first use (the table comes from the settings) and again only with a new DynamoDB client.
CONFIG = IdempotencyConfig(
    event_key_jmespath="key",
    payload_validation_jmespath="body",
    expires_after_seconds=RETENTION_SECONDS,
    raise_on_no_idempotency_key=True,
)


def _first_time(request: IdempotentRequest, operation: Callable[[], str]) -> IdempotentResult:
    return IdempotentResult(execution_id=operation())


@functools.cache
def _guarded(table_name: str, client: Any) -> Callable[..., IdempotentResult]:
    persistence = DynamoDBPersistenceLayer(
        table_name=table_name,
        key_attr="PK",
        sort_key_attr="SK",
        static_pk_value="IDEMPOTENCY",
        expiry_attr="ttl",
        boto3_client=client,
    )
    guarded: Callable[..., IdempotentResult] = idempotent_function(
        data_keyword_argument="request",
        persistence_store=persistence,
        config=CONFIG,
        output_serializer=PydanticSerializer(model=IdempotentResult),
    )(_first_time)
    return guarded


def run_once(
    table_name: str, key: str, body: dict[str, Any], operation: Callable[[], str], lambda_context: Any = None
) -> tuple[str, bool]:
    """Run ``operation`` (which returns an Execution id) at most once per key.
    Returns the id and whether this call ran it (False: a replay)."""
    ran = False

    def counted() -> str:
        nonlocal ran
        ran = True
        return operation()

    if lambda_context is not None:
        # Lets an in-progress record expire with the invocation, so a crashed try can be retried.
        CONFIG.register_lambda_context(lambda_context)
    try:
        result = _guarded(table_name, aws.dynamodb())(request=IdempotentRequest(key=key, body=body), operation=counted)
    except IdempotencyValidationError as exc:
        raise IdempotencyKeyReused("This Idempotency-Key was used with a different request body.") from exc
    except IdempotencyAlreadyInProgressError as exc:
        raise IdempotencyKeyInProgress("A request with this Idempotency-Key is still in progress.") from exc
    return result.execution_id, ran
