"""boto3 clients, created lazily once per container.

Endpoints come from the standard environment (``AWS_ENDPOINT_URL`` in local
mode), so nothing here knows whether it talks to AWS or to moto.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_stepfunctions import SFNClient

_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=2,
    read_timeout=10,
)


def _client(service: str) -> Any:
    return boto3.session.Session().client(service, config=_CONFIG)  # type: ignore[call-overload]


@lru_cache(maxsize=1)
def dynamodb() -> DynamoDBClient:
    client: DynamoDBClient = _client("dynamodb")
    return client


@lru_cache(maxsize=1)
def s3() -> S3Client:
    # SigV4 always: only it signs Content-Length into a presigned PUT, which is what limits an
    # upload to its declared size (boto3 would otherwise presign SigV2 URLs in us-east-1).
    client: S3Client = boto3.session.Session().client("s3", config=_CONFIG.merge(Config(signature_version="s3v4")))
    return client


@lru_cache(maxsize=1)
def stepfunctions() -> SFNClient:
    client: SFNClient = _client("stepfunctions")
    return client


@lru_cache(maxsize=1)
def events() -> EventBridgeClient:
    client: EventBridgeClient = _client("events")
    return client


@lru_cache(maxsize=1)
def secretsmanager() -> SecretsManagerClient:
    client: SecretsManagerClient = _client("secretsmanager")
    return client


@lru_cache(maxsize=1)
def kms() -> Any:
    # Typed Any: the dev requirements carry no KMS stubs (boto3-stubs[kms]) yet.
    return _client("kms")


@lru_cache(maxsize=1)
def firehose() -> Any:
    # Typed Any, like kms: no Firehose stubs in the dev requirements.
    return _client("firehose")


_FACTORIES = (dynamodb, s3, stepfunctions, events, secretsmanager, kms, firehose)


def create_clients() -> None:
    """Create every client now (a warm-up: ~0.1 s each, paid before the first call needs one)."""
    for factory in _FACTORIES:
        factory()


def reset_clients() -> None:
    """Forget every cached client (tests switch endpoints between runs)."""
    for factory in _FACTORIES:
        factory.cache_clear()
