"""plexctl node logs|metrics|audit: relative times, one line per record, and --follow
printing each record once however its polls overlap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from plexctl.cli import cli
from plexctl.telemetry import Tail, audit_line, collect, follow, lines, log_line, metric_line, parse_time, rfc3339

NOW = datetime(2025, 1, 15, 10, 30, 0, tzinfo=UTC)


def item(at: str, **record: Any) -> dict[str, Any]:
    return {"received_at": at, "record": record}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1h", "2025-01-15T09:30:00.000Z"),
        ("30m", "2025-01-15T10:00:00.000Z"),
        ("2d", "2025-01-13T10:30:00.000Z"),
        ("1h30m", "2025-01-15T09:00:00.000Z"),
        ("90s", "2025-01-15T10:28:30.000Z"),
        ("2025-01-15T08:00:00Z", "2025-01-15T08:00:00Z"),
        ("2025-01-15T08:00:00.5+02:00", "2025-01-15T08:00:00.5+02:00"),
    ],
)
def test_since_takes_durations_ago_or_rfc3339(value: str, expected: str) -> None:
    assert parse_time(value, NOW) == expected


@pytest.mark.parametrize("value", ["", "1w", "h", "yesterday", "2025-01-15", "1h 30m"])
def test_other_times_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_time(value, NOW)


def test_a_log_record_is_one_line() -> None:
    at = "2025-01-15T10:30:00.123Z"
    assert log_line(item(at, severity="info", unit="plexd", message="reconciled\n")) == (f"{at} info plexd: reconciled")
    assert log_line(item(at, source="journald", message="x")) == f"{at} - journald: x"


def test_a_metric_shows_its_group_peer_and_compact_data() -> None:
    at = "2025-01-15T10:30:00.123Z"
    record = {"group": "tunnel", "peer_id": "n_peer", "data": {"rx": 1, "tx": 2}}
    assert metric_line(item(at, **record)) == f'{at} tunnel peer=n_peer {{"rx":1,"tx":2}}'
    long = metric_line(item(at, group="g", data={"k": "v" * 500}))
    assert long.endswith("…") and len(long) < 220


def test_an_audit_entry_shows_what_who_and_on_what() -> None:
    at = "2025-01-15T10:30:00.123Z"
    record = {
        "event_type": "SYSCALL",
        "action": "open",
        "result": "denied",
        "source": "auditd",
        "subject": {"uid": 1000},
        "object": {"path": "/etc/shadow"},
    }
    assert audit_line(item(at, **record)) == (
        f'{at} SYSCALL open denied auditd subject={{"uid":1000}} object={{"path":"/etc/shadow"}}'
    )


def test_lines_read_oldest_first() -> None:
    newest_first = [item("2025-01-15T10:30:02.000Z", message="b"), item("2025-01-15T10:30:01.000Z", message="a")]
    assert [line.rsplit(" ", 1)[-1] for line in lines("logs", newest_first)] == ["a", "b"]


def test_collect_fills_the_wanted_count_across_short_and_empty_pages() -> None:
    pages = [
        {"items": [], "next_cursor": "c1"},
        {"items": [item("t3", n=3)], "next_cursor": "c2"},
        {"items": [item("t2", n=2), item("t1", n=1)], "next_cursor": "c3"},
    ]
    asked: list[dict[str, Any]] = []

    def fetch(query: dict[str, Any]) -> dict[str, Any]:
        asked.append(dict(query))
        return pages[len(asked) - 1]

    found, cursor = collect(fetch, {"since": "s"}, want=3)
    assert [i["record"]["n"] for i in found] == [3, 2, 1]
    assert cursor == "c3"
    assert [(q.get("cursor"), q["limit"]) for q in asked] == [(None, 3), ("c1", 3), ("c2", 2)]


# --follow -------------------------------------------------------------------------------------
def test_follow_prints_only_new_records_oldest_first() -> None:
    first = [item("2025-01-15T10:30:01.000Z", message="b"), item("2025-01-15T10:30:00.000Z", message="a")]
    polls = [
        {"items": first},  # nothing new
        {
            "items": [
                item("2025-01-15T10:30:03.000Z", message="d"),
                item("2025-01-15T10:30:02.000Z", message="c"),
                *first,
            ]
        },
        {"items": [item("2025-01-15T10:30:03.000Z", message="d")]},
    ]
    asked: list[dict[str, Any]] = []
    printed: list[str] = []

    def fetch(query: dict[str, Any]) -> dict[str, Any]:
        asked.append(query)
        return polls[len(asked) - 1]

    follow(
        fetch,
        Tail(first, cut=False),
        lambda items: printed.extend(i["record"]["message"] for i in items),
        sleep=lambda _: None,
        polls=3,
    )

    assert printed == ["c", "d"]
    assert asked[0]["since"] == "2025-01-15T10:22:31.000Z"  # 450 s before the newest shown
    assert asked[2]["since"] == "2025-01-15T10:22:33.000Z"


def test_equal_records_in_the_same_millisecond_are_each_printed_once() -> None:
    at = "2025-01-15T10:30:00.000Z"
    tail = Tail([item(at, message="retry")], cut=False)
    twice = [item(at, message="retry"), item(at, message="retry")]
    assert len(tail.fresh(twice)) == 1  # the second of two equal records arrived since
    assert tail.fresh(twice) == []


def test_records_older_than_a_cut_first_page_are_not_news() -> None:
    at = "2025-01-15T10:30:00.000Z"
    shown = [item("2025-01-15T10:30:01.000Z", message="newest"), item(at, message="n49")]
    tail = Tail(shown, cut=True)
    polled = [*shown, item(at, message="n48"), item("2025-01-15T10:29:59.000Z", message="n47")]
    assert tail.fresh(polled) == []


class LateServer:
    """A node logging every 5 s from T0 whose records become readable only when the delivery
    stream flushes: one buffer per 300 s, written up to 1.5 x that after its first record.
    ``since`` at or after the server's now is refused, as the API does (400)."""

    T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)

    def __init__(self, started_after: timedelta) -> None:
        self.now = self.T0 + started_after
        self.records = [self.T0 + timedelta(seconds=5 * n) for n in range(400)]

    def readable_at(self, record: datetime) -> datetime:
        buffer = int((record - self.T0).total_seconds() // 300)
        return self.T0 + timedelta(seconds=300 * buffer + 450)

    def visible(self) -> list[datetime]:
        return [r for r in self.records if r < self.now and self.readable_at(r) <= self.now]

    def fetch(self, query: dict[str, Any]) -> dict[str, Any]:
        since = datetime.fromisoformat(query["since"]) if query.get("since") else self.now - timedelta(hours=24)
        assert since < self.now, "400 invalid_parameter: since must be before until"
        found = sorted((r for r in self.visible() if r >= since), reverse=True)
        offset = int(query.get("cursor") or 0)
        limit = int(query.get("limit", 50))
        page: dict[str, Any] = {
            "items": [{"received_at": rfc3339(r), "record": {"message": rfc3339(r)}} for r in found][
                offset : offset + limit
            ]
        }
        if offset + limit < len(found):
            page["next_cursor"] = str(offset + limit)
        return page

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("started_after", "since"),
    [
        (timedelta(seconds=10), None),  # nothing readable yet: the first page is empty
        (timedelta(seconds=10), "2026-03-01T09:59:00Z"),
        (timedelta(seconds=400), None),
        (timedelta(seconds=900), None),  # the first page is cut at 50 records
    ],
)
def test_follow_prints_every_record_delivered_late_exactly_once(started_after: timedelta, since: str | None) -> None:
    server = LateServer(started_after)
    first, cursor = collect(server.fetch, {"since": since}, want=50)
    printed = [item["received_at"] for item in reversed(first)]
    tail = Tail(first, cut=cursor is not None, since=since)

    follow(
        server.fetch,
        tail,
        lambda items: printed.extend(item["received_at"] for item in items),
        sleep=server.sleep,
        polls=240,
    )

    oldest = first[-1]["received_at"] if first else rfc3339(LateServer.T0)
    expected = [rfc3339(r) for r in server.visible() if rfc3339(r) >= oldest]
    assert len(expected) > 150
    assert printed == expected


def test_follow_polls_from_the_servers_times_whatever_the_local_clock() -> None:
    """Nothing in a poll comes from this machine's clock: the first read's since until a
    record is seen, then the lag before the newest one."""
    tail = Tail([], cut=False, since=None)
    assert tail.since() is None
    tail.fresh([item("2025-01-15T10:30:00.000Z", message="x")])
    assert tail.since() == "2025-01-15T10:22:30.000Z"
    short = Tail([item("2025-01-15T10:30:00.000Z", message="x")], cut=False, since="2025-01-15T10:29:00Z")
    assert short.since() == "2025-01-15T10:29:00.000Z"  # never before the since asked for


def test_logs_takes_a_lag_in_seconds_for_follow() -> None:
    node_id = "0190a8b8-b1c1-7b1b-8b1b-b1b1b1b1b1b1"
    shown = CliRunner().invoke(cli, ["node", "logs", "--help"])
    assert shown.exit_code == 0 and "--lag SECONDS" in shown.output and "450" in shown.output
    refused = CliRunner().invoke(cli, ["node", "logs", node_id, "-f", "--lag", "-1"])
    assert refused.exit_code == 2 and "--lag" in refused.output
