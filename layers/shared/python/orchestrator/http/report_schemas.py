"""Report and drift bodies as the agent sends them (seed 003), and their operator read views."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import ConfigDict, Field, StrictInt

from orchestrator.clock import rfc3339
from orchestrator.domain.reports import (
    MAX_BATCH_ITEMS,
    MAX_PAYLOAD_BYTES,
    DriftCorrection,
    DriftReport,
    ReportBatch,
    ReportEntry,
    StoredReport,
    payload_of,
)
from orchestrator.http.schemas import GO_NIL, GoList, NodeBody

REPORT_KEY = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,255}$"
# Go's time.Time as encoding/json writes it (RFC 3339, up to nanoseconds).
GO_TIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$"
MAX_CORRECTIONS = 200

ReportKey = Annotated[
    str, Field(min_length=1, max_length=256, pattern=REPORT_KEY, description="Letters, digits and `._:/-`.")
]
GoTime = Annotated[str, Field(max_length=64, pattern=GO_TIME, examples=["2025-01-15T10:30:00Z"])]


class ReportEntryIn(NodeBody):
    model_config = ConfigDict(title="ReportEntry")

    key: ReportKey
    content_type: Annotated[str, Field(max_length=255)] = Field("", examples=["application/json"])
    payload: Any = Field(
        None,
        description=f"Any JSON value, at most {MAX_PAYLOAD_BYTES} bytes compact (else 413 `report_payload_too_large`).",
    )
    version: Annotated[StrictInt, Field(ge=0, le=2**63 - 1)] = Field(
        description="Must be greater than the stored entry's version (else 409 `report_version_conflict`)."
    )
    updated_at: GoTime

    def to_domain(self) -> ReportEntry:
        return ReportEntry(
            key=self.key,
            content_type=self.content_type,
            payload_json=json.dumps(self.payload, separators=(",", ":"), ensure_ascii=False),
            version=self.version,
            updated_at=self.updated_at,
        )


class ReportSyncRequest(NodeBody):
    """A batch of report entries to store and keys to delete, all or nothing (unknown fields
    are ignored)."""

    model_config = ConfigDict(title="ReportSync")

    entries: GoList[ReportEntryIn] = Field(
        default_factory=list,
        description=f"{GO_NIL} With `deleted`, at most {MAX_BATCH_ITEMS} items (else 413 `report_batch_too_large`);"
        " a key at most once (else 400 `invalid_body`).",
    )
    deleted: GoList[ReportKey] = Field(default_factory=list, description=GO_NIL)

    def to_domain(self) -> ReportBatch:
        return ReportBatch(entries=tuple(e.to_domain() for e in self.entries), deleted=tuple(self.deleted))


class DriftCorrectionIn(NodeBody):
    model_config = ConfigDict(title="DriftCorrection")

    type: Annotated[str, Field(min_length=1, max_length=128)] = Field(examples=["peer_added"])
    detail: Annotated[str, Field(max_length=1024)] = ""


class DriftRequest(NodeBody):
    """What the node corrected when it reconciled (unknown fields are ignored)."""

    model_config = ConfigDict(title="DriftReport")

    timestamp: GoTime
    corrections: GoList[DriftCorrectionIn] = Field(
        default_factory=list, max_length=MAX_CORRECTIONS, description=f"{GO_NIL} At most {MAX_CORRECTIONS}."
    )

    def to_domain(self) -> tuple[DriftCorrection, ...]:
        return tuple(DriftCorrection(type=c.type, detail=c.detail) for c in self.corrections)


# Projections -------------------------------------------------------------------------
def report_view(report: StoredReport) -> dict[str, Any]:
    return {
        "key": report.key,
        "content_type": report.content_type,
        "payload": payload_of(report),
        "version": report.version,
        "updated_at": report.updated_at,
        "received_at": rfc3339(report.received_at),
    }


def drift_view(drift: DriftReport) -> dict[str, Any]:
    return {
        "id": drift.id,
        "timestamp": drift.timestamp,
        "received_at": rfc3339(drift.received_at),
        "corrections": [{"type": c.type, "detail": c.detail} for c in drift.corrections],
    }
