"""The relay stores delivery cursors once the event index is quiet, or after a bounded wait."""

from __future__ import annotations

from orchestrator.relay.__main__ import CursorSchedule


def test_nothing_to_store_is_never_due() -> None:
    assert not CursorSchedule(quiet=2, max_delay=60).due(100.0, 0.0, pending=False)


def test_cursors_wait_while_the_index_keeps_showing_events() -> None:
    schedule = CursorSchedule(quiet=2, max_delay=60)
    # a fan-out's events were found 0.5 s ago: its last rounds are still being written
    assert not schedule.due(100.0, 99.5, pending=True)
    # two seconds without events: stored
    assert schedule.due(102.0, 99.5, pending=True)


def test_cursors_are_stored_after_the_longest_wait_even_if_events_keep_coming() -> None:
    schedule = CursorSchedule(quiet=2, max_delay=60)
    assert not schedule.due(100.0, 100.0, pending=True)
    assert not schedule.due(159.0, 159.0, pending=True)
    assert schedule.due(160.0, 160.0, pending=True)
    # and the wait starts again with the next cursors
    assert not schedule.due(165.0, 165.0, pending=True)


def test_a_wait_ends_when_nothing_is_left_to_store() -> None:
    schedule = CursorSchedule(quiet=2, max_delay=60)
    assert not schedule.due(100.0, 100.0, pending=True)
    assert not schedule.due(130.0, 130.0, pending=False)
    assert not schedule.due(159.0, 159.0, pending=True)  # waiting since 159, not 100
    assert schedule.due(219.0, 219.0, pending=True)
