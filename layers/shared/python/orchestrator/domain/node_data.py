"""Operator data entries for one node (SPEC §18): what ``/state`` ``data`` and the
``node_state_updated`` event carry.

plexd replaces its whole cache of metadata and data entries with each ``node_state_updated``
payload (and writes each entry to ``data/<key>.json``), so the event carries every entry of
the node, not only the changed one, and all of them must fit in one event: the agent reads its
stream in lines of at most 64 KiB. Keys are file-name safe.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from orchestrator.clock import rfc3339
from orchestrator.events.envelope import go_json

DATA_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
CONTENT_TYPE = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}(;[ -~]{0,120})?$"
)
MAX_PAYLOAD_BYTES = 16 * 1024
# Every entry of a node, as the agent's JSON encodes them, in one event beside the node's
# metadata (at most 16 KiB) and the envelope: well under the agent's 64 KiB line.
MAX_NODE_DATA_BYTES = 32 * 1024


def is_data_key(value: str) -> bool:
    return bool(DATA_KEY.fullmatch(value)) and value not in {".", ".."}


class DataEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str
    content_type: str
    payload: Any
    version: int
    updated_at: datetime

    def view(self) -> dict[str, Any]:
        """The entry as plexd's ``DataEntry`` reads it (and as operators read it back)."""
        return {
            "key": self.key,
            "content_type": self.content_type,
            "payload": self.payload,
            "version": self.version,
            "updated_at": rfc3339(self.updated_at),
        }


def with_entry(entries: Iterable[DataEntry], entry: DataEntry) -> list[DataEntry]:
    """The node's entries after ``entry`` is written (in key order)."""
    return sorted([e for e in entries if e.key != entry.key] + [entry], key=lambda e: e.key)


def without_key(entries: Iterable[DataEntry], key: str) -> list[DataEntry]:
    return [e for e in entries if e.key != key]


def encoded_data_size(entries: Iterable[DataEntry]) -> int:
    """Bytes of the entries as the event's payload encodes them (Go's escaping included)."""
    return len(go_json([e.view() for e in entries]).encode())


def state_update_fields(metadata: Mapping[str, Any], entries: Iterable[DataEntry]) -> dict[str, Any]:
    """The ``node_state_updated`` payload fields: the whole metadata and every data entry."""
    return {"metadata": dict(metadata), "data": [e.view() for e in entries]}


class DataOwner(BaseModel):
    """What a write of a node's data entries reads of the node: its project, whether it is
    active, its metadata (the event carries it) and its data revision (the writes of one node's
    entries are serialized on it, so each event carries exactly the entries after its change)."""

    model_config = ConfigDict(frozen=True)

    node_id: str
    project_id: str
    active: bool
    metadata: dict[str, Any]
    data_revision: int
