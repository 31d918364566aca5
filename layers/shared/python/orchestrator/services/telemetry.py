"""Node telemetry (SPEC §19): a batch checked whole, counted against the node's budget, and
put to the delivery stream, or refused with nothing kept."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from orchestrator.domain import telemetry
from orchestrator.domain.credentials import NodeCredential
from orchestrator.domain.telemetry import Kind, Origin
from orchestrator.errors import PerNodeRateLimited
from orchestrator.services.context import Context
from orchestrator.settings import require
from orchestrator.store.telemetry import DeliveryStream, TelemetryBudget

NOT_PROVISIONED = "node_telemetry_not_provisioned"


@dataclass(frozen=True, slots=True)
class Accepted:
    accepted_at: datetime
    records: int
    stream_calls: int


def stream(ctx: Context) -> DeliveryStream:
    """The delivery stream (501 ``node_telemetry_not_provisioned`` when not configured)."""
    return DeliveryStream(require(ctx.settings.telemetry_stream_name, NOT_PROVISIONED))


def ingest(
    ctx: Context,
    node: NodeCredential,
    kind: Kind,
    content: bytes,
    *,
    content_type: str | None,
) -> Accepted:
    """Keep the batch ``content`` (inflated) of ``node``'s ``kind`` records, or refuse it
    whole: 413, 400 ``ingest_batch_malformed``, 429 ``per_node_rate_limited``."""
    delivery = stream(ctx)
    records = telemetry.records_of(kind, content, content_type)
    now = ctx.clock.now()
    if not records:
        return Accepted(now, 0, 0)
    budget = ctx.settings.telemetry_node_bytes_per_minute
    if not TelemetryBudget(ctx.table).spend(
        node.node_id, telemetry.budget_minute(now), len(content), budget, int(now.timestamp())
    ):
        retry_after = telemetry.seconds_to_next_minute(now)
        raise PerNodeRateLimited(
            f"This node sent more than {budget} bytes of telemetry this minute; retry in {retry_after} s.",
            retry_after=retry_after,
            limit=budget,
        )
    project_id = node.project_id or ctx.nodes.project_of(node.node_id) or ""
    lines = list(telemetry.stored_lines(Origin(kind, project_id, node.node_id, now), records))
    calls = delivery.put(telemetry.stream_records(lines))
    return Accepted(now, len(records), calls)
