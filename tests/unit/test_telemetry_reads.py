"""Reading telemetry back (domain/telemetry_reads): the window, the hour walk, line order,
and a scan that resumes exactly where its budget stopped it."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.clock import rfc3339
from orchestrator.domain.telemetry_reads import (
    MAX_PAGE_BYTES,
    Position,
    Window,
    answer_size,
    first_position,
    hours_down,
    newest_lines,
    object_order,
    parse_instant,
    received_at_of,
    scan,
    window,
)
from orchestrator.errors import InvalidCursor, InvalidParameter

NOW = datetime(2025, 1, 15, 10, 30, 0, 123000, tzinfo=UTC)


def stored(received_at: datetime, n: int) -> bytes:
    head = {"kind": "logs", "project": "p", "node": "n", "received_at": rfc3339(received_at)}
    return (json.dumps({**head, "record": {"n": n}}, separators=(",", ":")) + "\n").encode()


class FakeBucket:
    """Objects by key, listed in pages of ``page_size`` keys, counting requests."""

    def __init__(self, page_size: int = 1000) -> None:
        self.objects: dict[str, list[bytes]] = {}
        self.page_size = page_size
        self.lists = 0
        self.gets = 0

    def prefix(self, hour: datetime) -> str:
        return f"t/date={hour:%Y-%m-%d}/hour={hour:%H}/"

    def put(self, at: datetime, numbers: Iterable[int], name: str | None = None) -> str:
        key = f"{self.prefix(at)}{name or 's-1-' + at.strftime('%Y-%m-%d-%H-%M-%S-%f')}.gz"
        self.objects[key] = [stored(at, n) for n in numbers]
        return key

    def list_pages(self, prefix: str) -> Iterator[list[str]]:
        keys = sorted(k for k in self.objects if k.startswith(prefix))
        for start in range(0, max(len(keys), 1), self.page_size):
            self.lists += 1
            yield keys[start : start + self.page_size]

    def lines(self, key: str) -> Iterator[bytes]:
        self.gets += 1
        yield from self.objects[key]


def read_all(bucket: FakeBucket, start: Position, limit: int, **kwargs: object) -> tuple[list[int], int]:
    """Every record number, page after page, and how many pages it took."""
    numbers: list[int] = []
    pages = 0
    position: Position | None = start
    while position is not None:
        page = scan(bucket, Position.from_cursor(position.to_cursor()), limit=limit, **kwargs)  # type: ignore[arg-type]
        pages += 1
        numbers.extend(line.record["n"] for line in page.lines)
        position = page.next
        assert pages < 1000
    return numbers, pages


# The window -----------------------------------------------------------------------------
def test_until_defaults_to_now_and_since_to_a_day_before() -> None:
    w = window(None, None, NOW)
    assert (w.since, w.until) == (NOW - timedelta(hours=24), NOW)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-01-15T10:30:00Z", datetime(2025, 1, 15, 10, 30, tzinfo=UTC)),
        ("2025-01-15T12:30:00.5+02:00", datetime(2025, 1, 15, 10, 30, 0, 500000, tzinfo=UTC)),
        ("2025-01-15T10:30:00.123456789Z", datetime(2025, 1, 15, 10, 30, 0, 123000, tzinfo=UTC)),
        ("2025-01-15t10:30:00z", datetime(2025, 1, 15, 10, 30, tzinfo=UTC)),
    ],
)
def test_rfc3339_times_are_read_to_the_millisecond(text: str, expected: datetime) -> None:
    assert parse_instant("since", text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "1h",
        "2025-01-15",
        "2025-01-15T10:30Z",
        "2025-13-15T10:30:00Z",
        "2025-01-15 10:30:00Z",
        "x" * 100,
        "0000-01-01T00:00:00Z",
        "0001-01-01T00:30:00+01:00",
        "2025-01-15T24:00:00Z",
        "2025-01-15T10:00:00+99:00",
    ],
)
def test_other_times_are_invalid_parameter(text: str) -> None:
    with pytest.raises(InvalidParameter):
        parse_instant("since", text)


def test_an_until_without_a_day_before_it_is_invalid_parameter() -> None:
    with pytest.raises(InvalidParameter):
        window(None, "0001-01-01T10:00:00Z", NOW)


def test_since_must_be_before_until() -> None:
    with pytest.raises(InvalidParameter):
        window("2025-01-15T10:00:00Z", "2025-01-15T10:00:00Z", NOW)


def test_hours_are_walked_down_inclusive() -> None:
    hours = list(hours_down(NOW, NOW - timedelta(hours=2, minutes=45)))
    assert [h.hour for h in hours] == [10, 9, 8, 7]


def test_an_until_on_the_hour_does_not_walk_that_hour() -> None:
    w = window("2025-01-15T08:00:00Z", "2025-01-15T10:00:00Z", NOW)
    assert first_position(w).hour.hour == 9


# Lines ---------------------------------------------------------------------------------------
def test_received_at_is_read_from_the_head_or_the_whole_line() -> None:
    assert received_at_of(stored(NOW, 1).rstrip()) == rfc3339(NOW)
    reordered = json.dumps({"record": {}, "received_at": "2025-01-15T10:30:00.123Z"}).encode()
    assert received_at_of(reordered) == "2025-01-15T10:30:00.123Z"
    assert received_at_of(b"not json") is None


def test_newest_lines_are_the_last_ones_before_the_index_in_the_window() -> None:
    w = Window(NOW - timedelta(minutes=1), NOW + timedelta(minutes=1))
    lines = [stored(NOW, n) for n in range(10)] + [stored(NOW + timedelta(hours=1), 99)]
    found = newest_lines(lines, w, want=3, before=8)
    assert [index for index, _, _ in found] == [7, 6, 5]


# The scan ------------------------------------------------------------------------------------
def test_a_scan_reads_newest_first_across_objects_and_hours() -> None:
    bucket = FakeBucket()
    bucket.put(NOW - timedelta(hours=2), [0, 1])
    bucket.put(NOW - timedelta(minutes=5), [2, 3])
    bucket.put(NOW - timedelta(minutes=1), [4, 5, 6])
    page = scan(bucket, first_position(window(None, None, NOW + timedelta(seconds=1))), limit=50)
    assert [line.record["n"] for line in page.lines] == [6, 5, 4, 3, 2, 1, 0]
    assert page.next is None


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 7, 50])
def test_paging_loses_and_repeats_nothing(limit: int) -> None:
    bucket = FakeBucket()
    n = 0
    for minutes in range(0, 240, 17):
        bucket.put(NOW - timedelta(minutes=minutes), range(n, n + 3))
        n += 3
    expected = sorted(range(n), key=lambda i: (i // 3, -i))  # newest object first
    numbers, _ = read_all(bucket, first_position(window(None, None, NOW + timedelta(seconds=1))), limit)
    assert numbers == expected


def test_since_and_until_filter_on_received_at() -> None:
    bucket = FakeBucket()
    for minutes in range(6):
        bucket.put(NOW - timedelta(minutes=minutes * 10), [minutes])
    w = window(rfc3339(NOW - timedelta(minutes=40)), rfc3339(NOW - timedelta(minutes=10)), NOW)
    numbers, _ = read_all(bucket, first_position(w), 50)
    assert numbers == [2, 3, 4]  # 10 minutes before NOW is excluded (until), 40 included (since)


def test_the_request_budget_stops_a_scan_and_the_cursor_finds_old_data() -> None:
    bucket = FakeBucket()
    bucket.put(NOW - timedelta(days=3), [1, 2])
    w = window(rfc3339(NOW - timedelta(days=7)), None, NOW)
    first = scan(bucket, first_position(w), limit=50, max_requests=64)
    assert first.lines == [] and first.next is not None
    assert first.requests == 64
    numbers, pages = read_all(bucket, first.next, 50, max_requests=64)
    assert numbers == [2, 1]
    assert pages == 2  # 168 hours: 64 + 64 + 40


def test_the_registration_floor_bounds_the_walk() -> None:
    bucket = FakeBucket()
    w = window(rfc3339(NOW - timedelta(days=7)), None, NOW)
    page = scan(bucket, first_position(w), limit=50, floor=NOW - timedelta(hours=2))
    assert page.next is None
    assert bucket.lists == 3


def test_a_budget_spent_between_objects_resumes_at_the_next_object() -> None:
    bucket = FakeBucket()
    for second in range(10):
        bucket.put(NOW - timedelta(seconds=second), [second])
    start = first_position(window(None, None, NOW + timedelta(seconds=1)))
    first = scan(bucket, start, limit=50, max_requests=4)
    assert [line.record["n"] for line in first.lines] == [0, 1, 2]
    numbers, _ = read_all(bucket, first.next, 50, max_requests=4)  # type: ignore[arg-type]
    assert numbers == list(range(3, 10))


def test_an_hour_that_needs_more_lists_than_the_budget_still_progresses() -> None:
    bucket = FakeBucket(page_size=1)
    for second in range(5):
        bucket.put(NOW - timedelta(seconds=second), [second])
    start = first_position(window(None, None, NOW + timedelta(seconds=1)))
    numbers, _ = read_all(bucket, start, 50, max_requests=3)
    assert numbers == [0, 1, 2, 3, 4]


def test_the_page_byte_budget_cuts_a_page_and_resumes_at_the_line() -> None:
    bucket = FakeBucket()
    bucket.put(NOW, range(10))
    start = first_position(window(None, None, NOW + timedelta(seconds=1)))
    size = answer_size(rfc3339(NOW), {"n": 0})
    first = scan(bucket, start, limit=50, max_bytes=size * 3)
    assert [line.record["n"] for line in first.lines] == [9, 8, 7]
    numbers, _ = read_all(bucket, start, 50, max_bytes=size * 3)
    assert numbers == list(range(9, -1, -1))


def test_the_page_bytes_count_the_answer_as_it_is_serialized() -> None:
    """The response escapes non-ASCII (json.dumps' default): an emoji is 4 bytes stored but
    12 answered, so a page measured in stored bytes could pass Lambda's 6 MB."""
    bucket = FakeBucket()
    big = "\U0001f600" * 5000  # 20 kB stored, 60 kB answered
    key = bucket.put(NOW, [])
    head = {"kind": "logs", "project": "p", "node": "n", "received_at": rfc3339(NOW)}
    bucket.objects[key] = [
        (json.dumps({**head, "record": {"n": n, "m": big}}, ensure_ascii=False) + "\n").encode() for n in range(200)
    ]
    start = first_position(window(None, None, NOW + timedelta(seconds=1)))

    page = scan(bucket, start, limit=200)

    answer = json.dumps({"items": [{"received_at": x.received_at, "record": x.record} for x in page.lines]})
    assert MAX_PAGE_BYTES - 70_000 < len(answer) <= MAX_PAGE_BYTES
    assert page.next is not None
    numbers, _ = read_all(bucket, start, 200)
    assert numbers == list(range(199, -1, -1))


def test_the_inflated_bytes_a_read_may_take_are_bounded_between_objects() -> None:
    bucket = FakeBucket()
    for second in range(6):  # six objects of ten lines, all of one size
        bucket.put(NOW - timedelta(seconds=second), range(10 + second * 10, 20 + second * 10))
    one_object = sum(len(line) for line in next(iter(bucket.objects.values())))
    start = first_position(window(rfc3339(NOW - timedelta(minutes=30)), rfc3339(NOW + timedelta(seconds=1)), NOW))

    first = scan(bucket, start, limit=200, max_inflated=one_object * 2 + 1)

    assert bucket.gets == 3  # the budget is checked between objects: the third one is read whole
    assert first.inflated == one_object * 3
    assert len(first.lines) == 30 and first.next is not None
    numbers, pages = read_all(bucket, start, 200, max_inflated=one_object * 2 + 1)
    assert numbers == [n for second in range(6) for n in range(second * 10 + 19, second * 10 + 9, -1)]
    assert pages == 2


def test_a_read_takes_at_least_one_object_whatever_its_size() -> None:
    bucket = FakeBucket()
    for second in range(3):
        bucket.put(NOW - timedelta(seconds=second), range(second * 5, second * 5 + 5))
    start = first_position(window(rfc3339(NOW - timedelta(minutes=30)), rfc3339(NOW + timedelta(seconds=1)), NOW))
    numbers, pages = read_all(bucket, start, 200, max_inflated=1)
    assert numbers == [4, 3, 2, 1, 0, 9, 8, 7, 6, 5, 14, 13, 12, 11, 10]
    assert pages == 3


def test_objects_named_after_until_are_not_read() -> None:
    """An object is named by the arrival of its oldest line: named past until (and a
    minute's slack), none of its lines can be in the window."""
    bucket = FakeBucket()
    bucket.put(NOW - timedelta(minutes=30), [1])
    bucket.put(NOW - timedelta(minutes=20), [2])
    for minutes in (8, 5, 1):
        bucket.put(NOW - timedelta(minutes=minutes), [10 + minutes])
    w = window(rfc3339(NOW - timedelta(hours=1)), rfc3339(NOW - timedelta(minutes=10)), NOW)

    page = scan(bucket, first_position(w), limit=50)

    assert [line.record["n"] for line in page.lines] == [2, 1]
    assert bucket.gets == 2


def test_an_object_named_within_the_slack_after_until_is_read() -> None:
    bucket = FakeBucket()
    at = NOW - timedelta(minutes=10)
    bucket.put(at, [1], name=f"s-1-{(at + timedelta(seconds=59)):%Y-%m-%d-%H-%M-%S}-late")
    w = window(rfc3339(NOW - timedelta(hours=1)), rfc3339(at + timedelta(milliseconds=1)), NOW)
    assert [line.record["n"] for line in scan(bucket, first_position(w), limit=50).lines] == [1]


def test_objects_are_ordered_by_name_time_then_version_as_a_number() -> None:
    bucket = FakeBucket()
    earlier, later = NOW - timedelta(seconds=2), NOW - timedelta(seconds=1)
    bucket.put(earlier, [1], name=f"plex-telemetry-10-{earlier:%Y-%m-%d-%H-%M-%S}-aaaa")
    bucket.put(earlier, [2], name=f"plex-telemetry-9-{later:%Y-%m-%d-%H-%M-%S}-bbbb")
    bucket.put(earlier, [3], name=f"plex-telemetry-10-{later:%Y-%m-%d-%H-%M-%S}-0000")
    bucket.put(earlier, [0], name="unnamed")
    start = first_position(window(None, None, NOW))
    for limit in (1, 50):
        numbers, _ = read_all(bucket, start, limit)
        assert numbers == [3, 2, 1, 0]
    assert object_order("t/s-10-2025-01-15-10-30-00-x.gz") > object_order("t/s-9-2025-01-15-10-30-00-y.gz")


def test_lines_whose_record_does_not_parse_are_dropped() -> None:
    bucket = FakeBucket()
    key = bucket.put(NOW, range(6))
    broken = stored(NOW, 0).replace(b'"record":{', b'"record":{{')
    bucket.objects[key][2] = broken
    bucket.objects[key][4] = (
        b'{"kind":"logs","project":"p","node":"n","received_at":"' + rfc3339(NOW).encode() + b'"}\n'
    )
    start = first_position(window(None, None, NOW + timedelta(seconds=1)))

    page = scan(bucket, start, limit=3)

    assert [line.record["n"] for line in page.lines] == [5, 3, 1]
    for limit in (1, 2, 3, 50):
        numbers, _ = read_all(bucket, start, limit)
        assert numbers == [5, 3, 1, 0]


def test_the_walk_starts_no_higher_than_the_hour_of_now() -> None:
    bucket = FakeBucket()
    bucket.put(NOW - timedelta(minutes=5), [1])
    w = window(rfc3339(NOW - timedelta(hours=1)), "2100-01-01T00:00:00Z", NOW)

    page = scan(bucket, first_position(w), limit=50, ceiling=NOW + timedelta(minutes=5))

    assert [line.record["n"] for line in page.lines] == [1]
    assert page.next is None
    assert bucket.lists == 2


@pytest.mark.parametrize(
    "cursor",
    [
        {},
        {"s": "x", "u": "2025-01-15T10:00:00.000Z", "h": "2025-01-15T10", "k": None, "l": None},
        {"s": "2025-01-15T09:00:00.000Z", "u": "2025-01-15T10:00:00.000Z", "h": "2025-01-15", "k": None, "l": None},
        {"s": "2025-01-15T09:00:00.000Z", "u": "2025-01-15T10:00:00.000Z", "h": "2025-01-15T09", "k": 3, "l": None},
        {"s": "2025-01-15T09:00:00.000Z", "u": "2025-01-15T10:00:00.000Z", "h": "2025-01-15T09", "k": "a", "l": -1},
        {"s": "2025-01-15T09:00:00.000Z", "u": "2025-01-15T10:00:00.000Z", "h": "2025-01-15T09", "k": None, "l": 1},
    ],
)
def test_a_position_that_is_not_one_is_an_invalid_cursor(cursor: dict[str, object]) -> None:
    with pytest.raises(InvalidCursor):
        Position.from_cursor(cursor)
