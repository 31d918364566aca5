"""boto3 clients, created lazily once per container.

Endpoints come from the standard environment (``AWS_ENDPOINT_URL`` in local
mode), so nothing here knows whether it talks to AWS or to moto.
"""

from __future__ import annotations

import base64
import json
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_stepfunctions import SFNClient

T = TypeVar("T")

_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=2,
    read_timeout=10,
)


def _client(service: str) -> Any:
    return boto3.session.Session().client(service, config=_CONFIG)  # type: ignore[call-overload]


@lru_cache(maxsize=1)
def dynamodb() -> DynamoDBClient:
    """The DynamoDB client. Its reads hand their items over raw (:func:`raw_items`), and
    it does not validate parameters against the model: botocore checks every attribute value
    of every item written (~40 % of a 1,000-event fan-out's CPU), where the store module builds
    them from typed values and DynamoDB validates each request again (a ValidationException)."""
    config = _CONFIG.merge(Config(parameter_validation=False))
    client: DynamoDBClient = raw_items(boto3.session.Session().client("dynamodb", config=config))
    return client


# The bulky members of reads' responses and of batch writes' requests. botocore walks every
# attribute value of every item against the service model: parsing a read's items (to hand
# over the same dicts the wire's JSON already has; binaries aside: base64 text, which
# ``store.table.deserialize`` decodes), and serializing a batch write's (to write the JSON
# ``json.dumps`` writes). For 1,000 event items: ~190 ms to parse, ~350 ms to serialize here.
_RAW_READS = {"Query": "Items", "Scan": "Items", "GetItem": "Item", "BatchGetItem": "Responses"}
_RAW_WRITES = {"BatchWriteItem": "RequestItems"}
_RAW_ID = "orchestrator-raw-items"
_RAW_FLAG = "_orchestrator_raw_items"
_STASH = "orchestrator_raw_request"


def raw_items(client: T) -> T:
    """Have ``client`` carry items as the wire's JSON, past botocore's model: the items of a
    read's response are handed over unparsed, a batch write's items are sent as they are given
    (attribute-value dicts; bytes for a binary). Everything else in a request or a response,
    and every error, is botocore's as usual. Idempotent; returns the client."""
    events = getattr(getattr(client, "meta", None), "events", None)
    if events is None or getattr(client, _RAW_FLAG, False):
        return client
    for operation in _RAW_READS:
        events.register(f"before-parse.dynamodb.{operation}", _take_items, unique_id=f"{_RAW_ID}-r-{operation}")
    for operation in _RAW_WRITES:
        events.register(
            f"before-parameter-build.dynamodb.{operation}", _stash_items, unique_id=f"{_RAW_ID}-s-{operation}"
        )
        events.register(f"before-call.dynamodb.{operation}", _send_items, unique_id=f"{_RAW_ID}-w-{operation}")
    setattr(client, _RAW_FLAG, True)
    return client


def _take_items(
    operation_model: Any, response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any
) -> None:
    member = _RAW_READS.get(operation_model.name)
    if member is None or response_dict.get("status_code", 500) >= 300 or not response_dict.get("body"):
        return
    try:
        body = json.loads(response_dict["body"])
    except ValueError:  # not JSON (a damaged body): botocore parses it, and its CRC32 check retries
        return
    if isinstance(body, dict) and member in body:
        customized_response_dict[member] = body.pop(member)
        response_dict["body"] = json.dumps(body).encode()


def _stash_items(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    """Before botocore validates and serializes: the items are set aside, each table's first
    one left for botocore (a client that validates parameters checks its shape)."""
    member = _RAW_WRITES.get(model.name)
    if member is not None and isinstance(params.get(member), dict):
        context[_STASH] = (member, params[member])
        params[member] = {table: list(requests[:1]) for table, requests in params[member].items()}


def _send_items(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    """After: the items go into the serialized body as JSON, before the request is signed."""
    stashed = context.pop(_STASH, None)
    if stashed is None:
        return
    member, value = stashed
    body = json.loads(params["body"])
    body[member] = value
    params["body"] = json.dumps(body, default=_base64).encode()


def _base64(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not an attribute value")


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
