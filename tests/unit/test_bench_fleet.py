"""The pure parts of bench/fleet.py: percentiles, per-node-hour arithmetic, the SSE parser, the
backoff, and the JSON line (the bench's contract with whoever reads its last line)."""

import json

import pytest

from bench import fleet


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert fleet.percentile(values, 50) == 50.0
    assert fleet.percentile(values, 99) == 99.0
    assert fleet.percentile(values, 100) == 100.0
    assert fleet.percentile([3.0, 1.0, 2.0], 50) == 2.0  # unsorted input
    assert fleet.percentile([0.7], 99) == 0.7


def test_percentile_of_1000_deliveries_is_the_990th() -> None:
    values = [i / 1000 for i in range(1000)]  # 0.000 .. 0.999
    assert fleet.percentile(values, 99) == 0.989
    assert fleet.percentile(values, 50) == 0.499


def test_percentile_of_nothing_is_none() -> None:
    assert fleet.percentile([], 50) is None


def test_per_node_hour_divides_by_connected_node_hours() -> None:
    # 1,000 nodes for 120 s = 33.33 node-hours; 4,000 requests -> 120 per node-hour.
    assert fleet.per_node_hour(4000, 1000, 120) == pytest.approx(120.0)
    # One node held for the whole window by one request: 3,600 function-seconds per node-hour.
    assert fleet.per_node_hour(30.0, 1, 30.0) == pytest.approx(3600.0)
    assert fleet.per_node_hour(5, 0, 120) is None


def test_clipped_seconds_counts_only_the_window() -> None:
    intervals: list[tuple[float, float | None]] = [
        (0.0, 5.0),  # before the window: nothing
        (8.0, 12.0),  # straddles the start: 2 s
        (12.0, 14.0),  # inside: 2 s
        (19.0, 25.0),  # straddles the end: 1 s
        (18.0, None),  # still open at the end: 2 s
        (21.0, 22.0),  # after: nothing
    ]
    assert fleet.clipped_seconds(intervals, 10.0, 20.0) == pytest.approx(7.0)


def test_jitter_stays_within_a_quarter() -> None:
    assert fleet.jittered(4.0, draw=lambda: 0.0) == 3.0
    assert fleet.jittered(4.0, draw=lambda: 1.0) == 5.0
    assert fleet.jittered(4.0, draw=lambda: 0.5) == 4.0


def test_backoff_doubles_up_to_a_minute() -> None:
    interval, seen = 1.0, []
    for _ in range(8):
        seen.append(interval)
        interval = fleet.next_interval(interval)
    assert seen == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]


def result(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "tier": "relay",  # an extra, given first on purpose
        "nodes": 1000,
        "seconds": 120.0,
        "delivered": 1000,
        "delivery_p50_s": 0.4,
        "delivery_p99_s": 1.2,
        "requests_per_node_hour": 120.0,
        "function_seconds_per_node_hour": 0.0,
        "tier_cpu_seconds_per_node_hour": 0.3,
        "bad_signatures": 0,
    }
    return base | overrides


def test_result_line_puts_the_issue_fields_first_then_the_extras() -> None:
    line = fleet.result_line(result())
    assert "\n" not in line
    parsed = json.loads(line)
    assert list(parsed)[:8] == list(fleet.FIRST_FIELDS)
    assert list(parsed)[8:] == ["tier", "bad_signatures"]


def test_result_line_refuses_a_result_without_an_issue_field() -> None:
    incomplete = result()
    del incomplete["delivery_p99_s"]
    with pytest.raises(ValueError, match="delivery_p99_s"):
        fleet.result_line(incomplete)


def test_targets_met_and_missed() -> None:
    assert fleet.missed_targets(result()) == []
    missed = fleet.missed_targets(
        result(delivered=998, delivery_p99_s=None, requests_per_node_hour=1440.0, tier_cpu_seconds_per_node_hour=1.5)
    )
    assert missed == [
        "delivered 998 != nodes 1000",
        "delivery_p99_s None > 2",
        "requests_per_node_hour 1440.0 > 120",
        "tier_cpu_seconds_per_node_hour 1.5 > 1",
    ]


def test_sse_parser_reads_events_across_chunks_as_plexd_does() -> None:
    parser = fleet.PlexdSseParser()
    assert parser.feed(b": keep-alive\n\nid: 01a\nevent: action_req") == []
    events = parser.feed(b'uest\ndata: {"a":\r\ndata: 1}\n\nretry: 1000\n\n')
    assert events == [fleet.SseEvent(type="action_request", data='{"a":\n1}', id="01a")]
    assert parser.retry_ms == 1000


def test_sse_parser_defaults_the_type_and_resets_on_a_blank_line_without_data() -> None:
    parser = fleet.PlexdSseParser()
    # An id and event without data are forgotten at the blank line (plexd resets them).
    assert parser.feed(b"id: 1\nevent: x\n\ndata: hello\n\n") == [fleet.SseEvent("message", "hello", "")]
    # A line without a colon is a field name with an empty value; unknown fields are ignored.
    assert parser.feed(b"data\nfoo: bar\n\n") == [fleet.SseEvent("message", "", "")]
