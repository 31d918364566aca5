"""The event index (GSI5): where every node event and feed event is also filed, so that an
event relay learns of new events by reading one small index instead of one partition per
connected node (SPEC §20, docs/capacity.md).

An event is filed under the minute its UUIDv7 id was minted in and a shard taken from the
id's random tail: ``EVENTS#<yyyymmddHHMM>#<shard>``, sorted by event id. A reader polls the
shards of the last few seconds' minutes for ids after a bound; nothing here touches AWS.
"""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta

from orchestrator.clock import uuid7_time

MINUTE_FORMAT = "%Y%m%d%H%M"
MAX_SHARDS = 64


def minute_of(moment: datetime) -> str:
    """The minute bucket of ``moment`` (UTC), as the index's partition names it."""
    return moment.astimezone(UTC).strftime(MINUTE_FORMAT)


def shard_of(event_id: str, shards: int) -> int:
    """The shard an event id is filed under: spread by the id's random tail, the same for
    every writer and reader that agree on ``shards``."""
    tail = event_id.replace("-", "")[-8:]
    try:
        value = int(tail, 16)
    except ValueError:
        value = zlib.crc32(event_id.encode())
    return value % shards


def index_bucket(event_id: str, shards: int) -> tuple[str, int] | None:
    """(minute, shard) an event is filed under, or None when it is not indexed (no shards
    configured, or an id that carries no time: tests' fakes)."""
    if shards <= 0:
        return None
    minted = uuid7_time(event_id)
    if minted is None:
        return None
    return minute_of(minted), shard_of(event_id, shards)


def floor_id(moment: datetime) -> str:
    """The lowest UUIDv7 that can be minted at ``moment``: every id minted at or after it
    sorts at or after this string (ids sort by their leading 48-bit millisecond time)."""
    millis = max(0, int(moment.timestamp() * 1000))
    digits = f"{millis:012x}"
    return f"{digits[:8]}-{digits[8:]}-7000-8000-000000000000"


def minutes_between(start: datetime, end: datetime) -> list[str]:
    """The minute buckets that ``[start, end]`` touches, oldest first."""
    first = start.astimezone(UTC).replace(second=0, microsecond=0)
    last = end.astimezone(UTC).replace(second=0, microsecond=0)
    minutes = []
    moment = first
    while moment <= last:
        minutes.append(moment.strftime(MINUTE_FORMAT))
        moment += timedelta(minutes=1)
    return minutes


def minted_at(event_id: str) -> datetime | None:
    """When an event id was minted (None for ids that carry no time)."""
    return uuid7_time(event_id)
