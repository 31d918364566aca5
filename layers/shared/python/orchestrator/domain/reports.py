"""What a node reports about itself (SPEC §18): versioned report entries and drift.

Report entries are the agent's own key/value state (``app-health``...), synced in batches:
a batch is all or nothing, and an entry is stored only over an older version of its key.
Drift is what the agent corrected when it reconciled, kept per node for a while.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from orchestrator.errors import InvalidBody, ReportBatchTooLarge, ReportPayloadTooLarge

MAX_BATCH_ITEMS = 100  # one TransactWriteItems holds at most 100 operations
MAX_PAYLOAD_BYTES = 256 * 1024  # a report item holds its payload and a few small fields (≤ 400 KB)
DRIFT_RETENTION_SECONDS = 30 * 86_400


class ReportEntry(BaseModel):
    """One report entry as the node sent it. ``payload_json`` is the payload as compact JSON:
    stored and given back as the node wrote it (any JSON value)."""

    model_config = ConfigDict(frozen=True)

    key: str
    content_type: str
    payload_json: str
    version: int
    updated_at: str


class StoredReport(ReportEntry):
    """A stored entry, with when the control plane took it."""

    received_at: datetime


class ReportBatch(BaseModel):
    model_config = ConfigDict(frozen=True)

    entries: tuple[ReportEntry, ...]
    deleted: tuple[str, ...]

    @property
    def size(self) -> int:
        return len(self.entries) + len(self.deleted)


class DriftCorrection(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: str
    detail: str


class DriftReport(BaseModel):
    """One drift report: what the node corrected at ``timestamp`` (its clock, as sent)."""

    model_config = ConfigDict(frozen=True)

    id: str
    timestamp: str
    corrections: tuple[DriftCorrection, ...]
    received_at: datetime


def accepts_version(stored: int | None, incoming: int) -> bool:
    """An entry replaces its key only with a greater version (any version for a new key).
    The store's condition ``attribute_not_exists(PK) OR version < :v`` is this rule."""
    return stored is None or stored < incoming


def check_batch(batch: ReportBatch) -> None:
    """A batch the store can write in one transaction, or the reason it cannot:
    413 past ``MAX_BATCH_ITEMS`` operations or a payload past ``MAX_PAYLOAD_BYTES``;
    400 when a key appears twice (an entry and a delete of one key included)."""
    if batch.size > MAX_BATCH_ITEMS:
        raise ReportBatchTooLarge(
            f"A report batch holds at most {MAX_BATCH_ITEMS} entries and deleted keys together; this one has"
            f" {batch.size}.",
            limit=MAX_BATCH_ITEMS,
        )
    oversized = [e.key for e in batch.entries if len(e.payload_json.encode()) > MAX_PAYLOAD_BYTES]
    if oversized:
        raise ReportPayloadTooLarge(
            f"A report payload is limited to {MAX_PAYLOAD_BYTES} bytes of JSON.", keys=oversized
        )
    repeated = duplicate_keys([e.key for e in batch.entries] + list(batch.deleted))
    if repeated:
        raise InvalidBody("Each key may appear once per batch (in entries or in deleted).", keys=repeated)


def duplicate_keys(keys: Sequence[str]) -> list[str]:
    """The keys that appear more than once, in first-appearance order."""
    counts = Counter(keys)
    return [key for key in dict.fromkeys(keys) if counts[key] > 1]


def conflicting_keys(batch: ReportBatch, reasons: Sequence[str | None]) -> list[str]:
    """The entries a cancelled batch transaction refused for their version (its operations are
    the entries, in order, then the deletes)."""
    return [
        entry.key for entry, reason in zip(batch.entries, reasons, strict=False) if reason == "ConditionalCheckFailed"
    ]


def payload_of(entry: ReportEntry) -> Any:
    """The entry's payload as a JSON value."""
    return json.loads(entry.payload_json)
