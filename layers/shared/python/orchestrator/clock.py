"""Time and identifiers, as small ports so tests can pass fakes."""

from __future__ import annotations

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


def rfc3339(moment: datetime) -> str:
    """RFC 3339 UTC with a ``Z`` suffix and millisecond precision."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_rfc3339(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
