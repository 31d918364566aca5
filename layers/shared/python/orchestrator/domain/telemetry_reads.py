"""Reading a node's telemetry back (SPEC §19): newest first, over a bounded scan.

The lines of a node's ``kind`` are kept in objects under one prefix per hour of arrival
(:func:`orchestrator.store.keys.telemetry_node_prefix`), each object a gzip of lines as
:func:`orchestrator.domain.telemetry.stored_lines` writes them. A read walks those hours from
``until``'s (never above the hour of now plus :data:`CLOCK_AHEAD`: nothing can be newer)
down to ``since``'s (never below the node's registration hour: nothing can be older), lists
each hour's objects, and reads them newest first (by the time in the object's name, see
:func:`object_order`, then line descending within an object) until the page is full. An
object named after ``until`` (plus :data:`NAME_SLACK`) holds no line of the window and is not
read. Each LIST page and each GET counts against :data:`MAX_REQUESTS`, and the bytes the GETs
inflate against :data:`MAX_INFLATED_BYTES`; when either is spent (only ever between two
objects), or the answer's bytes reach :data:`MAX_PAGE_BYTES`, the read answers what it found
and a :class:`Position` from which the next read resumes exactly: no line lost, none repeated.

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
# The bytes a read may inflate: an object holds at most the stream's 64 MB buffer (measured
# before compression), so about two whole objects a read, a second or two of gunzip. Checked
# between objects: a read always reads at least one object whole.
MAX_INFLATED_BYTES = 128 * 1_048_576
# The answer's items, as the response serializes them (ASCII JSON: a CJK character is 6
# bytes, an emoji 12), well under Lambda's 6 MB response (a record can be 256 KiB).
MAX_PAGE_BYTES = 4 * 1_048_576
# An object is named by the arrival time of its oldest record at the delivery stream, which
# is at or after that record's received_at (the ingest Lambda stamps it, then puts it): an
# object named more than this after ``until`` holds no line before ``until``.
NAME_SLACK = timedelta(seconds=60)
# No line is received after now: the walk starts no higher than this hour (clock skew allowed).
CLOCK_AHEAD = timedelta(minutes=5)

HOUR_FORMAT = "%Y-%m-%dT%H"
# RFC 3339 as the API accepts it: a date, a time, seconds, an optional fraction and a zone.
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")
# The head of a stored line, as stored_lines writes it: received_at without decoding the record.
_HEAD = re.compile(rb'^\{"kind":"[a-z]+","project":"[^"\\]*","node":"[^"\\]*","received_at":"([0-9TZ:.-]{24})"')
# The delivery stream's object name: <stream>-<version>-<YYYY-MM-DD-HH-MM-SS>-<uuid>[.gz].
_OBJECT_NAME = re.compile(r"^.+-(\d{1,9})-(\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2})-([^/]+)$")
_NAME_TIME = "%Y-%m-%d-%H-%M-%S"


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
    with ``key``, only the objects of ``hour`` up to ``key`` in :func:`object_order` (``key``
    included, and of it only the lines before index ``line`` when ``line`` is set)."""

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


def object_order(key: str) -> tuple[str, int, str, str]:
    """Where an object sorts among its hour's: by the time in its name, then the stream
    version as a number (``-10-`` after ``-9-``), then the rest of the name. A key not named
    as the stream names objects sorts before every one that is."""
    match = _OBJECT_NAME.match(key.rpartition("/")[2])
    if match is None:
        return "", -1, "", key
    version, moment, rest = match.groups()
    return moment, int(version), rest, key


def name_time(key: str) -> datetime | None:
    """The time in an object's name: when the stream received its oldest record (None for
    a key not named as the stream names objects)."""
    match = _OBJECT_NAME.match(key.rpartition("/")[2])
    if match is None:
        return None
    try:
        return datetime.strptime(match.group(2), _NAME_TIME).replace(tzinfo=UTC)
    except ValueError:
        return None


def answer_size(received_at: str, record: Any) -> int:
    """The bytes an item takes in the answer, serialized as ``json_response`` does (ASCII,
    compact), with the comma that separates it from the next."""
    return len(json.dumps({"received_at": received_at, "record": record}, separators=(",", ":"))) + 1


@dataclass(frozen=True, slots=True)
class Page:
    lines: list[Line]
    next: Position | None
    requests: int
    inflated: int = 0


class _Scan:
    """One read's state: the lines found, their bytes, and the requests made."""

    def __init__(
        self, source: ObjectSource, start: Position, limit: int, *, max_requests: int, max_inflated: int, max_bytes: int
    ) -> None:
        self.source = source
        self.window = start.window
        self.limit = limit
        self.max_requests = max_requests
        self.max_inflated = max_inflated
        self.max_bytes = max_bytes
        self.latest_name = start.window.until + NAME_SLACK
        self.found: list[Line] = []
        self.size = 0
        self.requests = 0
        self.inflated = 0
        # An hour or an object read whole: only then may the budget stop the read, so that
        # each read moves forward however the requests fall.
        self.progressed = False

    @property
    def over_budget(self) -> bool:
        return self.requests >= self.max_requests or self.inflated >= self.max_inflated

    @property
    def spent(self) -> bool:
        return self.progressed and self.over_budget

    def keys(self, hour: datetime, upto: str | None) -> list[str]:
        """The hour's keys that can hold lines of the window, newest first, up to ``upto``
        (included) when resuming in it."""
        keys: list[str] = []
        for page in self.source.list_pages(self.source.prefix(hour)):
            self.requests += 1
            keys.extend(key for key in page if not self.too_new(key))
        keys.sort(key=object_order, reverse=True)
        if upto is None:
            return keys
        last = object_order(upto)
        return [key for key in keys if object_order(key) <= last]

    def too_new(self, key: str) -> bool:
        """Named after ``until`` (and the slack): every line of it was received after."""
        named = name_time(key)
        return named is not None and named > self.latest_name

    def counted(self, lines: Iterable[bytes]) -> Iterator[bytes]:
        for line in lines:
            self.inflated += len(line)
            yield line

    def read(self, hour: datetime, key: str, before: int | None) -> Position | None:
        """Take the object's newest lines before ``before``; where to resume if the page is
        full (or its bytes are), else None. A line whose record does not parse is skipped;
        when skipped lines leave the page short, the object is read again below them."""
        while True:
            self.requests += 1
            want = self.limit - len(self.found)
            candidates = newest_lines(self.counted(self.source.lines(key)), self.window, want, before)
            for index, raw, received_at in candidates:
                record = record_of(raw)
                if record is None:
                    continue
                line = Line(received_at, record, answer_size(received_at, record))
                if self.found and self.size + line.size > self.max_bytes:
                    return Position(self.window, hour, key, index + 1)
                self.found.append(line)
                self.size += line.size
                if len(self.found) == self.limit:
                    return Position(self.window, hour, key, index)
            before = candidates[-1][0] if len(candidates) == want else 0
            if before == 0:  # the object is read to its first line
                self.progressed = True
                return None
            if self.over_budget:
                return Position(self.window, hour, key, before)

    def page(self, resume: Position | None) -> Page:
        return Page(self.found, resume, self.requests, self.inflated)


def scan(
    source: ObjectSource,
    start: Position,
    *,
    limit: int,
    floor: datetime | None = None,
    ceiling: datetime | None = None,
    max_requests: int = MAX_REQUESTS,
    max_inflated: int = MAX_INFLATED_BYTES,
    max_bytes: int = MAX_PAGE_BYTES,
) -> Page:
    """Up to ``limit`` lines from ``start`` on, newest first, and where to resume (None when
    the window is exhausted). ``floor`` (the node's registration) bounds the walk from below,
    ``ceiling`` (now, plus :data:`CLOCK_AHEAD`) from above. A read always makes progress:
    the hour it lists is listed whole, and it reads at least one object or hour before its
    budget stops it."""
    state = _Scan(source, start, limit, max_requests=max_requests, max_inflated=max_inflated, max_bytes=max_bytes)
    bottom = start.window.since if floor is None else max(start.window.since, floor)
    top = min(start.hour, start.window.top_hour)
    if ceiling is not None:
        top = min(top, hour_of(ceiling))
    for hour in hours_down(top, bottom):
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
    """The record a stored line holds (None for a line that holds none: not JSON, not an
    object, or without a record)."""
    try:
        document = json.loads(line)
    except ValueError:
        return None
    return document.get("record") if isinstance(document, dict) else None


def first_position(window: Window) -> Position:
    return Position(window, window.top_hour)
