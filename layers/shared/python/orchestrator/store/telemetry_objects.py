"""A node's telemetry objects in the telemetry bucket, as a read walks them.

The delivery stream writes them (:mod:`orchestrator.store.telemetry`); this side only lists
a node's hour prefixes and streams an object's lines, gunzipped as they are read, so a
64 MB object (the stream's buffer size) is never held whole. An object that does not
inflate is skipped past the damage (logged), never a failed read.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from orchestrator import aws
from orchestrator.domain.telemetry import Kind
from orchestrator.errors import DependencyUnavailable
from orchestrator.observability import logger
from orchestrator.store import keys

LIST_PAGE_SIZE = 1000


class TelemetryObjects:
    """One node's objects of one kind (an :class:`~orchestrator.domain.telemetry_reads.ObjectSource`)."""

    def __init__(self, bucket: str, kind: Kind, project_id: str, node_id: str) -> None:
        self.bucket = bucket
        self.kind = kind
        self.project_id = project_id
        self.node_id = node_id

    def prefix(self, hour: datetime) -> str:
        return keys.telemetry_node_prefix(
            self.kind.value, self.project_id, self.node_id, hour.strftime("%Y-%m-%d"), hour.hour
        )

    def list_pages(self, prefix: str) -> Iterator[list[str]]:
        request: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": LIST_PAGE_SIZE}
        while True:
            try:
                answer = aws.s3().list_objects_v2(**request)
            except (ClientError, BotoCoreError) as exc:
                logger.warning("telemetry bucket unavailable", error=type(exc).__name__)
                raise DependencyUnavailable("The telemetry store is unavailable.") from exc
            yield [item["Key"] for item in answer.get("Contents", [])]
            token = answer.get("NextContinuationToken")
            if not answer.get("IsTruncated") or not token:
                return
            request["ContinuationToken"] = token

    def lines(self, key: str) -> Iterator[bytes]:
        try:
            body = aws.s3().get_object(Bucket=self.bucket, Key=key)["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return  # expired between the LIST and the GET: nothing left to read
            logger.warning("telemetry bucket unavailable", error=type(exc).__name__)
            raise DependencyUnavailable("The telemetry store is unavailable.") from exc
        except BotoCoreError as exc:
            raise DependencyUnavailable("The telemetry store is unavailable.") from exc
        try:
            if key.endswith(".gz"):
                with gzip.GzipFile(fileobj=body, mode="rb") as stream:
                    yield from stream
            else:
                yield from body.iter_lines()
        except BotoCoreError as exc:
            raise DependencyUnavailable("The telemetry store is unavailable.") from exc
        except (OSError, EOFError, zlib.error) as exc:
            # A corrupt or truncated object: the lines read before the damage are answered,
            # the rest of the object is skipped, and the read goes on with the next object.
            logger.warning("telemetry object unreadable", key=key, error=type(exc).__name__)
