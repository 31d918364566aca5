"""The local server's process collects reference cycles on a timer, not by allocation count."""

from __future__ import annotations

import gc
import time
import weakref
from collections.abc import Iterator

import pytest

from orchestrator_local.server import collect_cycles_on_a_timer


class Node:
    def __init__(self) -> None:
        self.partner: Node | None = None


@pytest.fixture
def collector_restored() -> Iterator[None]:
    was_enabled = gc.isenabled()
    yield
    if was_enabled:
        gc.enable()


def test_cycles_are_collected_by_the_timer_with_the_automatic_collector_off(collector_restored: None) -> None:
    stop = collect_cycles_on_a_timer(every=0.05)
    try:
        assert not gc.isenabled()
        first, second = Node(), Node()
        first.partner, second.partner = second, first  # a cycle: reference counting cannot free it
        watched = weakref.ref(first)
        del first, second
        deadline = time.monotonic() + 5
        while watched() is not None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert watched() is None
    finally:
        stop.set()


def test_objects_outside_cycles_are_freed_at_once(collector_restored: None) -> None:
    stop = collect_cycles_on_a_timer(every=3600)
    try:
        lone = Node()
        watched = weakref.ref(lone)
        del lone
        assert watched() is None
    finally:
        stop.set()


def _old_cycle() -> weakref.ref[Node]:
    """A cycle that survived a young collection (now in the oldest generation), then became garbage."""
    first, second = Node(), Node()
    first.partner, second.partner = second, first
    gc.collect(1)  # reachable: it moves to the oldest generation
    return weakref.ref(first)


def test_the_timer_collects_young_objects_only_and_the_old_generation_on_the_full_timer(
    collector_restored: None,
) -> None:
    stop = collect_cycles_on_a_timer(every=0.02, full_every=3600)
    try:
        watched = _old_cycle()
        time.sleep(0.3)  # many young collections
        assert watched() is not None  # the old generation is not walked by them
    finally:
        stop.set()
    stop = collect_cycles_on_a_timer(every=0.02, full_every=0.1)
    try:
        deadline = time.monotonic() + 5
        while watched() is not None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert watched() is None  # the full collection frees it
    finally:
        stop.set()
