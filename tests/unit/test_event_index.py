"""The event index's arithmetic (domain.event_index) and the relay's reader of it
(relay.poller): which minutes and shards an event is filed under, and that a poll hands each
event over once, late ones included, and says from when it has missed nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import uuid6

from orchestrator.clock import uuid7_time
from orchestrator.domain.event_index import floor_id, index_bucket, minutes_between, shard_of
from orchestrator.domain.node_events import NodeEvent
from orchestrator.relay.poller import IndexPoller
from orchestrator.store import keys
from orchestrator.store.event_index import IndexedEvent

T0 = datetime(2026, 12, 2, 10, 59, 58, tzinfo=UTC)


def minted(at: datetime) -> str:
    """A UUIDv7 minted at ``at`` (its random tail random)."""
    millis = int(at.timestamp() * 1000)
    value = uuid6.uuid7().int & ((1 << 80) - 1) | (millis << 80)
    return str(uuid6.UUID(int=value))


def test_an_event_is_filed_under_the_minute_its_id_was_minted_in() -> None:
    event_id = minted(T0)
    assert uuid7_time(event_id) == T0
    minute, shard = index_bucket(event_id, 8) or ("", -1)
    assert minute == "202612021059"
    assert 0 <= shard < 8
    assert keys.event_index_keys(event_id, 8) == {"GSI5PK": f"EVENTS#202612021059#{shard}", "GSI5SK": event_id}


def test_events_are_not_indexed_without_shards_or_without_a_time_in_their_id() -> None:
    assert keys.event_index_keys(minted(T0), 0) == {}
    assert keys.event_index_keys("evt-1", 8) == {}


def test_shards_spread_ids_and_agree_between_writers_and_readers() -> None:
    shards = [shard_of(minted(T0), 8) for _ in range(400)]
    assert set(shards) == set(range(8))
    event_id = minted(T0)
    assert shard_of(event_id, 8) == shard_of(event_id, 8)


def test_the_floor_id_of_a_moment_sorts_before_every_id_minted_then_and_after_every_id_before() -> None:
    floor = floor_id(T0)
    assert all(minted(T0) >= floor for _ in range(50))
    assert all(minted(T0 + timedelta(milliseconds=1)) > floor for _ in range(50))
    assert all(minted(T0 - timedelta(milliseconds=1)) < floor for _ in range(50))


def test_a_window_across_a_minute_boundary_touches_both_minutes() -> None:
    assert minutes_between(T0 - timedelta(seconds=5), T0 + timedelta(seconds=3)) == ["202612021059", "202612021100"]
    assert minutes_between(T0 - timedelta(seconds=5), T0) == ["202612021059"]


class FakeIndex:
    """What the table's GSI5 would hold: events by (minute, shard), visible from when added."""

    def __init__(self, shards: int = 2) -> None:
        self.shards = shards
        self.events: list[IndexedEvent] = []
        self.reads: list[tuple[str, int, str]] = []
        self.loaded = 0
        self.re_reads = 0  # reads of ids up to a cursor

    def add(self, at: datetime) -> str:
        event_id = minted(at)
        self.events.append(
            IndexedEvent(NodeEvent(event_id=event_id, event_type="t", node_id="n", occurred_at="", payload={}))
        )
        return event_id

    def ids_after(
        self, minute: str, shard: int, after_event_id: str, through: str | None = None
    ) -> list[tuple[str, dict[str, str]]]:
        self.re_reads += through is not None
        # DynamoDB refuses a BETWEEN whose lower bound is above its upper one (ValidationException)
        assert through is None or after_event_id <= through, "BETWEEN with reversed bounds"
        return [
            (e.event_id, {"PK": "NODE#n", "SK": e.event_id})
            for e in self.after(minute, shard, after_event_id)
            if through is None or e.event_id <= through
        ]

    def load(self, event_keys: list[dict[str, str]]) -> list[IndexedEvent]:
        wanted = {key["SK"] for key in event_keys}
        self.loaded += len(wanted)
        return sorted((e for e in self.events if e.event_id in wanted), key=lambda e: e.event_id)

    def after(self, minute: str, shard: int, after_event_id: str) -> list[IndexedEvent]:
        self.reads.append((minute, shard, after_event_id))
        found = [
            e
            for e in self.events
            if index_bucket(e.event_id, self.shards) == (minute, shard) and e.event_id > after_event_id
        ]
        return sorted(found, key=lambda e: e.event_id)


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def poller(index: FakeIndex, clock: Clock) -> IndexPoller:
    return IndexPoller(index, index.shards, lookback_seconds=5, clock=clock)  # type: ignore[arg-type]


def test_each_event_is_handed_over_once_in_id_order() -> None:
    index, clock = FakeIndex(), Clock(T0)
    reader = poller(index, clock)
    first = [index.add(T0 - timedelta(seconds=1)) for _ in range(5)]
    assert [e.event_id for e in reader.poll()] == sorted(first)
    clock.at += timedelta(seconds=0.5)
    assert reader.poll() == []
    second = index.add(clock.at)
    clock.at += timedelta(seconds=0.5)
    assert [e.event_id for e in reader.poll()] == [second]


def test_an_event_that_shows_late_is_found_by_the_next_sweep() -> None:
    index, clock = FakeIndex(shards=1), Clock(T0)  # one shard: the late event is behind the cursor
    reader = poller(index, clock)
    reader.poll()  # a sweep
    newer = index.add(T0)
    clock.at += timedelta(seconds=0.5)
    assert [e.event_id for e in reader.poll()] == [newer]
    late = index.add(T0 - timedelta(seconds=2))  # minted before ``newer``, visible after it
    handed: list[str] = []
    for _ in range(5):
        clock.at += timedelta(seconds=0.5)
        handed += [e.event_id for e in reader.poll()]
    assert handed == [late]
    assert index.loaded == 1  # the sweep read ids, then only the one it had not seen


def test_an_event_that_shows_just_after_a_newer_one_is_found_by_the_next_poll() -> None:
    # Writers keep several batch writes in flight: a batch minted first can show second.
    index, clock = FakeIndex(shards=1), Clock(T0)
    reader = poller(index, clock)
    reader.poll()  # a sweep
    clock.at += timedelta(seconds=0.1)
    newer = index.add(clock.at)
    assert [e.event_id for e in reader.poll()] == [newer]
    earlier = index.add(clock.at - timedelta(seconds=0.3))  # minted before ``newer``, shows after
    clock.at += timedelta(seconds=0.1)  # long before the next sweep
    assert [e.event_id for e in reader.poll()] == [earlier]
    clock.at += timedelta(seconds=0.1)
    assert reader.poll() == []
    assert index.loaded == 1  # only the late one's item was read by key


def test_an_idle_reader_does_not_re_read_behind_its_cursors() -> None:
    index, clock = FakeIndex(shards=1), Clock(T0)
    reader = poller(index, clock)
    reader.poll()
    clock.at += timedelta(seconds=0.1)
    index.add(clock.at)
    reader.poll()
    clock.at += timedelta(seconds=0.1)
    reader.poll()
    assert index.re_reads == 1  # found an event 0.1 s ago: behind the cursor too
    clock.at += timedelta(seconds=2.1)  # nothing found for longer than twice the settling time
    reader.poll()
    assert index.re_reads == 1  # the cursor read alone


def test_a_bucket_whose_newest_event_left_the_window_is_not_re_read() -> None:
    # Shard 0's newest event is 6 s old (out of the 5 s window) while shard 1 keeps the reader
    # settling: the re-read of shard 0 would be a BETWEEN with reversed bounds.
    index, clock = FakeIndex(shards=2), Clock(T0)
    reader = poller(index, clock)
    reader.poll()
    while True:  # an event that lands in shard 0
        clock.at += timedelta(seconds=0.1)
        old = index.add(clock.at)
        if index_bucket(old, 2)[1] == 0:
            break
    reader.poll()
    clock.at += timedelta(seconds=6)
    while True:  # then one in shard 1, in the same minute
        clock.at += timedelta(seconds=0.1)
        new = index.add(clock.at)
        if index_bucket(new, 2)[1] == 1:
            break
    found = [e.event_id for e in reader.poll() + reader.poll()]
    clock.at += timedelta(seconds=0.1)
    found += [e.event_id for e in reader.poll()]
    assert new in found


def test_the_reader_reads_both_minutes_of_a_window_across_a_boundary() -> None:
    index, clock = FakeIndex(), Clock(T0 + timedelta(seconds=3))
    reader = poller(index, clock)
    before, after = index.add(T0 - timedelta(seconds=1)), index.add(T0 + timedelta(seconds=2))
    assert [e.event_id for e in reader.poll()] == sorted([before, after])
    assert {minute for minute, _, _ in index.reads} == {"202612021059", "202612021100"}


def test_the_horizon_is_the_first_window_and_moves_after_a_gap_longer_than_the_catch_up() -> None:
    index, clock = FakeIndex(), Clock(T0)
    reader = poller(index, clock)
    assert reader.horizon is None
    reader.poll()
    assert reader.horizon == T0 - timedelta(seconds=5)
    clock.at += timedelta(seconds=0.5)
    reader.poll()
    assert reader.horizon == T0 - timedelta(seconds=5)  # no gap: knowledge still runs from the start
    clock.at += timedelta(seconds=121)  # polls failed meanwhile, for longer than a sweep reaches back
    caught = index.add(clock.at - timedelta(seconds=100))
    assert [e.event_id for e in reader.poll()] == [caught]  # what it could still read is read
    assert reader.horizon == clock.at - timedelta(seconds=120)


def test_a_stall_shorter_than_the_catch_up_loses_nothing_and_keeps_the_horizon() -> None:
    """A loaded host: a poll took 20 s. The events minted meanwhile (some now older than the
    window) are all handed over, and the horizon stays (the hub would otherwise end every
    stream, and every agent's reconnect would be replayed from the table)."""
    index, clock = FakeIndex(), Clock(T0)
    reader = poller(index, clock)
    reader.poll()
    horizon = reader.horizon
    stalled = [index.add(T0 + timedelta(seconds=s)) for s in (0.5, 8, 14, 19)]
    clock.at += timedelta(seconds=20)
    assert sorted(e.event_id for e in reader.poll()) == sorted(stalled)
    assert reader.horizon == horizon
    clock.at += timedelta(seconds=3)
    assert reader.poll() == []  # each once


def test_a_busy_reader_re_reads_behind_its_cursors_every_quarter_of_the_settling_time() -> None:
    index, clock = FakeIndex(shards=1), Clock(T0)
    reader = poller(index, clock)
    reader.poll()  # a sweep
    for _ in range(10):  # a fan-out: every 0.1 s poll finds events, for 1 s
        clock.at += timedelta(seconds=0.1)
        index.add(clock.at)
        reader.poll()
    assert 3 <= index.re_reads <= 5  # about every 0.25 s, not ten times
