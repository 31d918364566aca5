"""Where node telemetry goes: the delivery stream (Firehose), and each node's byte budget.

Lines go to the stream packed into as few records and ``PutRecordBatch`` calls as its limits
allow (:func:`orchestrator.domain.telemetry.stream_records`); the stream splits them back into
lines, partitions them by kind, project, date, hour and node, and writes them gzipped to the
bucket (``TelemetryStream`` in ``template.yaml``). The budget is one conditional counter per
node and minute in the table.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence

from botocore.exceptions import BotoCoreError, ClientError

from orchestrator import aws
from orchestrator.domain.telemetry import stream_calls
from orchestrator.errors import DependencyUnavailable
from orchestrator.observability import logger
from orchestrator.store import keys
from orchestrator.store.table import ConditionFailed, Table

PUT_ATTEMPTS = 4
BUDGET_RETENTION_SECONDS = 600


class DeliveryStream:
    """The Firehose delivery stream telemetry records are put to."""

    def __init__(self, name: str) -> None:
        self.name = name

    def put(self, records: Sequence[bytes]) -> int:
        """Put every record; returns the ``PutRecordBatch`` calls made. Records the stream
        refused (``FailedPutCount``) are sent again, up to ``PUT_ATTEMPTS`` times with a
        jittered backoff; then 503 ``dependency_unavailable``."""
        calls = 0
        for batch in stream_calls(records):
            pending = list(batch)
            for attempt in range(1, PUT_ATTEMPTS + 1):
                calls += 1
                pending = self._put_once(pending)
                if not pending:
                    break
                if attempt == PUT_ATTEMPTS:
                    raise DependencyUnavailable("The telemetry stream refused records; retry the batch.")
                time.sleep(random.uniform(0.05, 0.2) * attempt)  # noqa: S311 - backoff jitter, not a secret
        return calls

    def _put_once(self, records: list[bytes]) -> list[bytes]:
        try:
            response = aws.firehose().put_record_batch(
                DeliveryStreamName=self.name, Records=[{"Data": record} for record in records]
            )
        except (ClientError, BotoCoreError) as exc:
            logger.warning("telemetry stream unavailable", error=type(exc).__name__)
            raise DependencyUnavailable("The telemetry stream is unavailable.") from exc
        if not response.get("FailedPutCount"):
            return []
        answers = response.get("RequestResponses", [])
        return [record for record, answer in zip(records, answers, strict=True) if answer.get("ErrorCode")]


class TelemetryBudget:
    """Each node's telemetry bytes per minute: one counter item, spent conditionally."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def spend(self, node_id: str, minute: str, size: int, budget: int, expires_at: int) -> bool:
        """Count ``size`` bytes against the node's minute; ``False`` (nothing counted) when
        that would pass ``budget``."""
        try:
            self.table.update(
                keys.telemetry_budget(node_id, minute),
                update="ADD #bytes :size SET #ttl = if_not_exists(#ttl, :ttl)",
                condition="attribute_not_exists(#bytes) OR #bytes <= :room",
                names={"#bytes": "bytes", "#ttl": "ttl"},
                values={":size": size, ":room": budget - size, ":ttl": expires_at + BUDGET_RETENTION_SECONDS},
                returns="NONE",
            )
        except ConditionFailed:
            return False
        return True
