"""Time and identifiers, as small ports so tests can pass fakes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Protocol

import uuid6


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class IdGenerator(Protocol):
    def new_id(self) -> str: ...


class Uuid7Generator:
    """Creation-ordered UUIDv7 identifiers (SPEC §3)."""

    def new_id(self) -> str:
        return str(uuid6.uuid7())


def uuid7_time(identifier: str) -> datetime | None:
    """The millisecond a UUIDv7 was minted at (its first 48 bits); None for any other id."""
    try:
        parsed = uuid.UUID(identifier)
    except ValueError:
        return None
    if parsed.version != 7:
        return None
    return datetime.fromtimestamp((parsed.int >> 80) / 1000, UTC)


def event_time(event_id: str, fallback: datetime) -> str:
    """An audit event's ``occurred_at``: the time its UUIDv7 id carries, so that a trail in id
    order is in time order too, whichever Lambda's clock minted each (``fallback`` for ids
    that carry none, e.g. tests' fakes)."""
    return rfc3339(uuid7_time(event_id) or fallback)


def rfc3339(moment: datetime) -> str:
    """RFC 3339 UTC with a ``Z`` suffix and millisecond precision."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_rfc3339(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
