"""``plexctl node logs|metrics|audit``: a node's telemetry, one line per record, oldest first.

The API answers newest first, page by page (``GET .../nodes/{id}/logs?since&until``); this
module turns relative times (``1h``) into RFC 3339, renders records as lines, and, for
``--follow``, polls with ``since`` a lag before the newest record the server answered and
prints only what it has not printed yet (:class:`Tail`).
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

KINDS = ("logs", "metrics", "audit")
FOLLOW_INTERVAL = 5.0
# A follow poll asks again for this much before the newest record it showed. In AWS a record
# is readable only once the delivery stream flushes its buffer, up to 1.5 times the buffer
# interval after it arrived (TelemetryBufferSeconds, 300 s by default): a record older than
# the newest one shown can still appear, and the ones shown already are recognised and skipped.
FOLLOW_LAG_SECONDS = 450
DATA_SHOWN = 160  # characters of a metric's data or an audit entry's subject/object

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: str, now: datetime) -> str:
    """``1h``, ``30m``, ``2d``, ``1h30m``, ``90s`` (that long before ``now``) or an RFC 3339
    time, as the RFC 3339 time the API takes; ``ValueError`` for anything else."""
    text = value.strip()
    if _RFC3339.match(text):
        return text
    match = _DURATION.match(text)
    if not text or match is None:
        raise ValueError(f"{value!r} is neither a duration (1h, 30m, 2d, 1h30m) nor an RFC 3339 time")
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return rfc3339(now - timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds))


def _text(value: Any) -> str:
    if value is None or value == "":
        return "-"
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _short(value: Any) -> str:
    text = _text(value)
    return text if len(text) <= DATA_SHOWN else text[: DATA_SHOWN - 1] + "…"


def log_line(item: Mapping[str, Any]) -> str:
    """``received_at severity unit: message`` (the source when there is no unit)."""
    record = item.get("record") or {}
    unit = record.get("unit") or record.get("source")
    message = str(record.get("message", "")).rstrip("\n")
    return f"{item.get('received_at')} {_text(record.get('severity'))} {_text(unit)}: {message}"


def metric_line(item: Mapping[str, Any]) -> str:
    """``received_at group [peer=…] data``."""
    record = item.get("record") or {}
    peer = f" peer={record['peer_id']}" if record.get("peer_id") else ""
    return f"{item.get('received_at')} {_text(record.get('group'))}{peer} {_short(record.get('data'))}"


def audit_line(item: Mapping[str, Any]) -> str:
    """``received_at event_type action result source subject=… object=…``."""
    record = item.get("record") or {}
    fields = [_text(record.get(name)) for name in ("event_type", "action", "result", "source")]
    return (
        f"{item.get('received_at')} {' '.join(fields)}"
        f" subject={_short(record.get('subject'))} object={_short(record.get('object'))}"
    )


LINES: dict[str, Callable[[Mapping[str, Any]], str]] = {"logs": log_line, "metrics": metric_line, "audit": audit_line}


def lines(kind: str, items_newest_first: Sequence[Mapping[str, Any]]) -> list[str]:
    """The records as lines, oldest first (as a log reads)."""
    render = LINES[kind]
    return [render(item) for item in reversed(items_newest_first)]


def identity(item: Mapping[str, Any]) -> tuple[str, str]:
    return str(item.get("received_at")), json.dumps(item.get("record"), sort_keys=True, separators=(",", ":"))


class Tail:
    """What ``--follow`` printed, to print each record once however the polls overlap.

    Records are told apart by arrival time and content; a record sent twice in a batch is
    two records, so each poll counts occurrences: of ``n`` equal records it prints those
    past the ones it already printed.

    The polls are anchored on the server's answers, never on this machine's clock: until a
    record is seen they ask for the first read's window again (``since`` as it was sent,
    None for the server's default), then for ``lag`` before the newest ``received_at`` seen.
    """

    def __init__(
        self,
        shown_newest_first: Sequence[Mapping[str, Any]],
        *,
        cut: bool,
        since: str | None = None,
        lag: timedelta = timedelta(seconds=FOLLOW_LAG_SECONDS),
    ) -> None:
        self.seen: Counter[tuple[str, str]] = Counter()
        self.newest: str | None = None
        self.origin = since
        self.lag = lag
        # When the first page did not hold every record of the window, records older than
        # the page (or arrived in its oldest millisecond) are not news: never print them.
        self.floor = str(shown_newest_first[-1].get("received_at")) if cut and shown_newest_first else None
        self._remember(list(shown_newest_first))

    def since(self) -> str | None:
        """``since`` of the next poll (None: the server's default window)."""
        if self.newest is None:
            return self.origin
        anchored = _instant(self.newest)
        origin = _instant(self.origin) if self.origin is not None else None
        if anchored is None:
            return self.origin
        since = anchored - self.lag
        return rfc3339(since if origin is None else max(since, origin))

    def fresh(self, polled_newest_first: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """The polled records not printed yet, oldest first; remembered as printed."""
        occurrences: Counter[tuple[str, str]] = Counter()
        news: list[Mapping[str, Any]] = []
        for item in reversed(polled_newest_first):
            key = identity(item)
            if self.floor is not None and key[0] <= self.floor:
                continue
            occurrences[key] += 1
            if occurrences[key] > self.seen[key]:
                news.append(item)
        self._remember(list(polled_newest_first))
        return news

    def _remember(self, items: list[Mapping[str, Any]]) -> None:
        counts = Counter(identity(item) for item in items)
        for key, count in counts.items():
            self.seen[key] = max(self.seen[key], count)
            if _instant(key[0]) is not None and (self.newest is None or key[0] > self.newest):
                self.newest = key[0]
        horizon = self.since() if self.newest is not None else None
        if horizon is not None:  # older than the next poll's since: never polled again
            for key in [k for k in self.seen if k[0] < horizon]:
                del self.seen[key]


def _instant(text: str) -> datetime | None:
    """An RFC 3339 time as the server writes it or plexctl sends it (None otherwise)."""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None


Fetch = Callable[[dict[str, Any]], dict[str, Any]]


def collect(fetch: Fetch, query: dict[str, Any], *, want: int | None) -> tuple[list[dict[str, Any]], str | None]:
    """Records newest first, page after page: until ``want`` are found (``None``: every
    page), asking each page for what is still wanted. A page can be short or empty and
    still have a cursor (the server bounds each scan). Returns the records and the cursor
    of the last page read."""
    found: list[dict[str, Any]] = []
    query = dict(query)
    while True:
        if want is not None:
            query["limit"] = want - len(found)
        page = fetch(query)
        found.extend(page.get("items") or [])
        cursor = page.get("next_cursor")
        if not cursor or (want is not None and len(found) >= want):
            return found, cursor
        query["cursor"] = cursor


def follow(
    fetch: Fetch,
    tail: Tail,
    emit: Callable[[Iterable[Mapping[str, Any]]], None],
    *,
    interval: float = FOLLOW_INTERVAL,
    sleep: Callable[[float], None] = time.sleep,
    polls: int | None = None,
) -> None:
    """Poll every ``interval`` seconds and ``emit`` the new records, oldest first, until
    interrupted (or ``polls`` polls, for tests). Each poll reads every page of its window."""
    done = 0
    while polls is None or done < polls:
        sleep(interval)
        items, _ = collect(fetch, {"since": tail.since(), "limit": 200}, want=None)
        emit(tail.fresh(items))
        done += 1
