"""Local state across restarts: what a clean stop saves and the next start restores.

moto keeps everything in memory. A clean stop (Ctrl-C, SIGTERM) writes the state the
control plane owns to ``<state dir>/state/``: every table item, every object of every
bucket, the values of the template's secrets (the JWT, signing, cursor and callback
keys: without them no token, node key check, signature or cursor of before would hold) and
the template's KMS keys (:mod:`orchestrator_local.kms_keys`: sealed node keys and secrets).
The next start restores them into the fresh moto and starts a new workflow run for every
Execution that had not ended (runs themselves cannot be carried over; a new run fans out
again, which agents tolerate as at-least-once delivery, waits for the deadline and
finalizes). A crash saves nothing: the next start restores the last clean stop's state.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3

from orchestrator_local import kms_keys
from orchestrator_local.resources import ACCOUNT, REGION, Stack

TABLE_FILE = "table.jsonl"
OBJECTS_FILE = "objects.jsonl"
SECRETS_FILE = "secrets.json"
KMS_FILE = "kms.json"
BATCH = 25


def save(stack: Stack, directory: Path) -> int:
    """Write the state to ``directory`` (replaced whole, atomically); returns the item count."""
    partial = directory.with_name(directory.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    os.chmod(partial, 0o700)  # secrets and node key hashes: owner only
    items = 0
    with (partial / TABLE_FILE).open("w") as out:
        for item in _scan(stack.refs["Table"]):
            out.write(json.dumps(item, default=_bytes) + "\n")
            items += 1
    with (partial / OBJECTS_FILE).open("w") as out:
        for bucket in stack.template.resources_of("AWS::S3::Bucket"):
            for key, body, version in _objects(stack.refs[bucket]):
                saved = {"bucket": bucket, "key": key, "body": base64.b64encode(body).decode()}
                out.write(json.dumps(saved | ({"version_id": version} if version else {})) + "\n")
    client = boto3.client("secretsmanager", region_name=REGION)
    values = {
        name: client.get_secret_value(SecretId=stack.refs[name])["SecretString"]
        for name in stack.template.resources_of("AWS::SecretsManager::Secret")
    }
    (partial / SECRETS_FILE).write_text(json.dumps(values))
    (partial / KMS_FILE).write_text(json.dumps(kms_keys.export_keys(stack)))
    shutil.rmtree(directory, ignore_errors=True)
    partial.rename(directory)
    return items


def restore(stack: Stack, directory: Path) -> int:
    """Load a saved state into the freshly deployed ``stack``; returns the item count (0 when
    there is nothing saved)."""
    if not (directory / TABLE_FILE).exists():
        return 0
    client = boto3.client("secretsmanager", region_name=REGION)
    for name, value in json.loads((directory / SECRETS_FILE).read_text()).items():
        if name in stack.refs:
            client.put_secret_value(SecretId=stack.refs[name], SecretString=value)
    if (directory / KMS_FILE).exists():  # a state saved before secrets existed has none
        kms_keys.adopt_keys(stack, json.loads((directory / KMS_FILE).read_text()))
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    items = 0
    with (directory / TABLE_FILE).open() as lines:
        batch: list[dict[str, Any]] = []
        for line in lines:
            batch.append({"PutRequest": {"Item": json.loads(line, object_hook=_from_bytes)}})
            if len(batch) == BATCH:
                items += _write(dynamodb, stack.refs["Table"], batch)
                batch = []
        items += _write(dynamodb, stack.refs["Table"], batch)
    with _notifications_off(stack):
        _restore_objects(stack, directory)
    return items


@contextmanager
def _notifications_off(stack: Stack) -> Iterator[None]:
    """Buckets without their event notifications while objects are restored: putting back
    what was saved is not an upload (the artifact verifier would take it for one)."""
    s3 = boto3.client("s3", region_name=REGION)
    saved: dict[str, Any] = {}
    for name in stack.template.resources_of("AWS::S3::Bucket"):
        bucket = stack.refs[name]
        answer = s3.get_bucket_notification_configuration(Bucket=bucket)
        saved[bucket] = {key: value for key, value in answer.items() if key != "ResponseMetadata"}
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
    try:
        yield
    finally:
        for bucket, configuration in saved.items():
            s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=configuration)


def _restore_objects(stack: Stack, directory: Path) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    with (directory / OBJECTS_FILE).open() as lines:
        for line in lines:
            saved = json.loads(line)
            bucket = stack.refs.get(saved.get("bucket", "OutputBucket"))  # older states: the output bucket's
            if bucket is not None:
                put = s3.put_object(Bucket=bucket, Key=saved["key"], Body=base64.b64decode(saved["body"]))
                if saved.get("version_id") and put.get("VersionId"):
                    _keep_version_id(bucket, saved["key"], put["VersionId"], saved["version_id"])


_BYTES = "$base64"  # how a binary attribute (B, BS) stands in the JSON lines


def _bytes(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return {_BYTES: base64.b64encode(value).decode()}
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _from_bytes(document: dict[str, Any]) -> Any:
    if len(document) == 1 and isinstance(document.get(_BYTES), str):
        return base64.b64decode(document[_BYTES])
    return document


def _write(client: Any, table: str, batch: list[dict[str, Any]]) -> int:
    pending = batch
    while pending:
        unprocessed = client.batch_write_item(RequestItems={table: pending}).get("UnprocessedItems", {})
        pending = unprocessed.get(table, [])
    return len(batch)


def _scan(table: str) -> Any:
    client = boto3.client("dynamodb", region_name=REGION)
    kwargs: dict[str, Any] = {"TableName": table}
    while True:
        page = client.scan(**kwargs)
        yield from page["Items"]
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _objects(bucket: str) -> Any:
    """Each object's key, bytes and version id (None in an unversioned bucket): the latest
    version only."""
    client = boto3.client("s3", region_name=REGION)
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for entry in page.get("Contents", []):
            got = client.get_object(Bucket=bucket, Key=entry["Key"])
            version = got.get("VersionId")
            yield entry["Key"], got["Body"].read(), (version if version and version != "null" else None)


def _keep_version_id(bucket: str, key: str, given: str, saved: str) -> None:
    """Give a restored object its saved version id back (the table names object versions:
    a verified artifact's download URL does). moto mints a new one on every put and has no
    API to choose it, so the restored key object is changed in moto's backend, which local
    mode always runs in this process."""
    from moto.s3.models import s3_backends

    for version in s3_backends[ACCOUNT]["aws"].get_bucket(bucket).keys.getlist(key) or []:
        if version.version_id == given:
            version._version_id = saved


def live_execution_ids(stack: Stack) -> list[str]:
    """Executions that had not ended (their workflow runs did not survive the stop)."""
    return [
        item["id"]["S"]
        for item in _scan(stack.refs["Table"])
        if item.get("type", {}).get("S") == "execution" and "completed_at" not in item
    ]
