"""Reading a node's telemetry back (SPEC §19): newest first, over a bounded scan.

The lines of a node's ``kind`` are kept in objects under one prefix per hour of arrival
(:func:`orchestrator.store.keys.telemetry_node_prefix`), each object a gzip of lines as
:func:`orchestrator.domain.telemetry.stored_lines` writes them. A read walks those hours from
``until``'s down to ``since``'s (never below the node's registration hour: nothing can be
older), lists each hour's objects, and reads them newest first (object key descending, then
line descending within an object) until the page is full. Each LIST page and each GET counts
against :data:`MAX_REQUESTS`; when they are spent, or the page's bytes reach
:data:`MAX_PAGE_BYTES`, the read answers what it found and a :class:`Position` from which the
next read resumes exactly: no line lost, none repeated.

Everything here is free of I/O: the objects come through the :class:`ObjectSource` port.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from orchestrator.clock import rfc3339
from orchestrator.errors import InvalidCursor, InvalidParameter

DEFAULT_WINDOW = timedelta(hours=24)
# LIST pages and GETs one read may make: a node's busy hour is one LIST and a few GETs, an
# empty day 24 LISTs; a read that would need more answers what it found and a cursor.
MAX_REQUESTS = 64
# The page's lines' bytes, well under Lambda's 6 MB response (a record can be 256 KiB).
MAX_PAGE_BYTES = 4 * 1_048_576

HOUR_FORMAT = "%Y-%m-%dT%H"
# RFC 3339 as the API accepts it: a date, a time, seconds, an optional fraction and a zone.
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")
# The head of a stored line, as stored_lines writes it: received_at without decoding the record.
_HEAD = re.compile(rb'^\{"kind":"[a-z]+","project":"[^"\\]*","node":"[^"\\]*","received_at":"([0-9TZ:.-]{24})"')


def parse_instant(name: str, value: str) -> datetime:
    """An RFC 3339 query parameter, to the millisecond (400 ``invalid_parameter`` otherwise)."""
    if len(value) > 40 or not _RFC3339.match(value):
        raise InvalidParameter(f"{name} must be an RFC 3339 time, e.g. 2025-01-15T10:30:00Z.")
    text = value.upper().replace("Z", "+00:00")
    main, _, rest = text.partition(".")
    if rest:  # Python reads at most 6 fractional digits; keep milliseconds
        digits = re.match(r"\d+", rest)
        assert digits is not None  # the pattern guarantees them
        text = f"{main}.{digits.group(0)[:3].ljust(3, '0')}{rest[digits.end() :]}"
    try:
        moment = datetime.fromisoformat(text).astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise InvalidParameter(f"{name} is not a valid time: {value}.") from exc
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


@dataclass(frozen=True, slots=True)
class Window:
    """Lines received at ``since`` or later and before ``until`` (UTC, milliseconds)."""

    since: datetime
    until: datetime

    def bounds(self) -> tuple[str, str]:
        """``since`` and ``until`` as stored lines spell ``received_at``: rfc3339's fixed-width
        form, whose text order is time order."""
        return rfc3339(self.since), rfc3339(self.until)

    @property
    def top_hour(self) -> datetime:
        """The newest hour a line of the window can be in (``until`` is exclusive)."""
        return hour_of(self.until - timedelta(milliseconds=1))


def window(since: str | None, until: str | None, now: datetime) -> Window:
    """The window a read covers: ``until`` defaults to ``now``, ``since`` to
    :data:`DEFAULT_WINDOW` before ``until``; ``since`` must be before ``until`` (400
    ``invalid_parameter``)."""
    end = (
        parse_instant("until", until) if until is not None else now.replace(microsecond=now.microsecond // 1000 * 1000)
    )
    try:
        start = parse_instant("since", since) if since is not None else end - DEFAULT_WINDOW
    except OverflowError as exc:
        raise InvalidParameter("until is too early: since defaults to 24 hours before it.") from exc
    if start >= end:
        raise InvalidParameter("since must be before until.")
    return Window(start, end)


def hour_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def hours_down(top: datetime, bottom: datetime) -> Iterator[datetime]:
    """Hours from ``top``'s down to ``bottom``'s, both included."""
    hour, last = hour_of(top), hour_of(bottom)
    while hour >= last:
        yield hour
        hour -= timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Position:
    """Where a read resumes: the lines of hour ``hour`` and every earlier hour of the window;
    with ``key``, only the objects of ``hour`` up to ``key`` (``key`` included, and of it only
    the lines before index ``line`` when ``line`` is set)."""

    window: Window
    hour: datetime
    key: str | None = None
    line: int | None = None

    def to_cursor(self) -> dict[str, Any]:
        return {
            "s": rfc3339(self.window.since),
            "u": rfc3339(self.window.until),
            "h": self.hour.strftime(HOUR_FORMAT),
            "k": self.key,
            "l": self.line,
        }

    @classmethod
    def from_cursor(cls, data: Mapping[str, Any]) -> Position:
        """The position a cursor carries (400 ``invalid_cursor`` when it is not one)."""
        try:
            since, until = parse_instant("since", data["s"]), parse_instant("until", data["u"])
            hour = datetime.strptime(data["h"], HOUR_FORMAT).replace(tzinfo=UTC)
            key, line = data["k"], data["l"]
        except (KeyError, TypeError, ValueError, InvalidParameter) as exc:
            raise InvalidCursor("The cursor is malformed.") from exc
        if not (key is None or isinstance(key, str)) or not (line is None or (type(line) is int and line >= 0)):
            raise InvalidCursor("The cursor is malformed.")
        if key is None and line is not None:
            raise InvalidCursor("The cursor is malformed.")
        return cls(Window(since, until), hour, key, line)


@dataclass(frozen=True, slots=True)
class Line:
    """One stored line as a read answers it."""

    received_at: str
    record: Any
    size: int


class ObjectSource(Protocol):
    """The objects of a node's ``kind``: what the store gives the scan."""

    def prefix(self, hour: datetime) -> str:
        """The node's prefix of ``hour``."""

    def list_pages(self, prefix: str) -> Iterator[list[str]]:
        """The keys under ``prefix`` in ascending order, one LIST page at a time."""

    def lines(self, key: str) -> Iterable[bytes]:
        """The object's lines in stored order (one GET, read as a stream)."""


def received_at_of(line: bytes) -> str | None:
    """A stored line's ``received_at`` (None for a line that is not one)."""
    head = _HEAD.match(line)
    if head is not None:
        return head.group(1).decode()
    try:
        document = json.loads(line)
    except ValueError:
        return None
    value = document.get("received_at") if isinstance(document, dict) else None
    return value if isinstance(value, str) else None


def newest_lines(
    lines: Iterable[bytes], window: Window, want: int, before: int | None = None
) -> list[tuple[int, bytes, str]]:
    """The object's newest ``want`` lines (index, bytes, received_at) in the window and
    before index ``before``, newest first; at most ``want`` lines are held at a time."""
    kept: deque[tuple[int, bytes, str]] = deque(maxlen=want)
    since, until = window.bounds()
    for index, raw in enumerate(lines):
        if before is not None and index >= before:
            break
        line = raw.rstrip(b"\r\n")
        if not line:
            continue
        received_at = received_at_of(line)
        if received_at is not None and since <= received_at < until:
            kept.append((index, line, received_at))
    return list(reversed(kept))


@dataclass(frozen=True, slots=True)
class Page:
    lines: list[Line]
    next: Position | None
    requests: int


class _Scan:
    """One read's state: the lines found, their bytes, and the requests made."""

    def __init__(self, source: ObjectSource, start: Position, limit: int, max_requests: int, max_bytes: int) -> None:
        self.source = source
        self.window = start.window
        self.limit = limit
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self.found: list[Line] = []
        self.size = 0
        self.requests = 0
        # An hour or an object read whole: only then may the budget stop the read, so that
        # each read moves forward however the requests fall.
        self.progressed = False

    @property
    def spent(self) -> bool:
        return self.progressed and self.requests >= self.max_requests

    def keys(self, hour: datetime, upto: str | None) -> list[str]:
        """The hour's keys, newest first, up to ``upto`` (included) when resuming in it."""
        keys: list[str] = []
        for page in self.source.list_pages(self.source.prefix(hour)):
            self.requests += 1
            keys.extend(page)
        keys.sort(reverse=True)
        return keys if upto is None else [key for key in keys if key <= upto]

    def read(self, hour: datetime, key: str, before: int | None) -> Position | None:
        """Take the object's newest lines before ``before``; where to resume if the page is
        full (or its bytes are), else None."""
        self.requests += 1
        want = self.limit - len(self.found)
        for index, raw, received_at in newest_lines(self.source.lines(key), self.window, want, before):
            if self.found and self.size + len(raw) > self.max_bytes:
                return Position(self.window, hour, key, index + 1)
            self.found.append(Line(received_at, record_of(raw), len(raw)))
            self.size += len(raw)
            if len(self.found) == self.limit:
                return Position(self.window, hour, key, index)
        self.progressed = True
        return None

    def page(self, resume: Position | None) -> Page:
        return Page(self.found, resume, self.requests)


def scan(
    source: ObjectSource,
    start: Position,
    *,
    limit: int,
    floor: datetime | None = None,
    max_requests: int = MAX_REQUESTS,
    max_bytes: int = MAX_PAGE_BYTES,
) -> Page:
    """Up to ``limit`` lines from ``start`` on, newest first, and where to resume (None when
    the window is exhausted). ``floor`` (the node's registration) bounds the walk from below.
    A read always makes progress: the hour it lists is listed whole, and it reads at least
    one object or hour before its budget stops it."""
    state = _Scan(source, start, limit, max_requests, max_bytes)
    bottom = start.window.since if floor is None else max(start.window.since, floor)
    for hour in hours_down(min(start.hour, start.window.top_hour), bottom):
        if state.spent:
            return state.page(Position(start.window, hour))
        resuming = start.key is not None and hour == start.hour
        for key in state.keys(hour, start.key if resuming else None):
            before = start.line if resuming and key == start.key else None
            if before == 0:
                continue
            if state.spent:
                return state.page(Position(start.window, hour, key, before))
            resume = state.read(hour, key, before)
            if resume is not None:
                return state.page(resume)
        state.progressed = True
    return state.page(None)


def record_of(line: bytes) -> Any:
    """The record a stored line holds (None for a line that holds none)."""
    try:
        document = json.loads(line)
    except ValueError:
        return None
    return document.get("record") if isinstance(document, dict) else None


def first_position(window: Window) -> Position:
    return Position(window, window.top_hour)
