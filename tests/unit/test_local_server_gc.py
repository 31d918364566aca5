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
