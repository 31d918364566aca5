"""Batch writes take their items lazily, 25 at a time as a writer is free: an item made by a
generator (fan-out's events, whose ids are minted from the clock) is made right before the
request that carries it, and every item is written once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from orchestrator.errors import DatastoreUnavailable
from orchestrator.store import table as table_module
from orchestrator.store.table import Table


class Client:
    """Records, in one log, each item made and each request answered."""

    def __init__(self, *, fail_on: int | None = None, unprocessed_once: bool = False) -> None:
        self.log: list[tuple[str, Any]] = []
        self.lock = threading.Lock()
        self.requests = 0
        self.fail_on = fail_on
        self.unprocessed_once = unprocessed_once

    def batch_write_item(self, RequestItems: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
        (puts,) = RequestItems.values()
        time.sleep(0.005)  # a round trip: other writers run meanwhile
        with self.lock:
            self.requests += 1
            number = self.requests
            if number == self.fail_on:
                raise RuntimeError("boom")
            if self.unprocessed_once and number == 1:
                self.log.append(("answered", [p["PutRequest"]["Item"]["n"]["N"] for p in puts[1:]]))
                return {"UnprocessedItems": {"t": puts[:1]}}
            self.log.append(("answered", [p["PutRequest"]["Item"]["n"]["N"] for p in puts]))
        return {}

    def made(self, n: int) -> dict[str, Any]:
        with self.lock:
            self.log.append(("made", n))
        return {"PK": f"P#{n}", "SK": "S", "n": n}

    def items(self, count: int) -> Iterator[dict[str, Any]]:
        return (self.made(n) for n in range(count))

    def written(self) -> list[int]:
        return sorted(int(n) for kind, batch in self.log if kind == "answered" for n in batch)


@pytest.fixture(autouse=True)
def no_sleep_between_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    real_sleep = time.sleep
    monkeypatch.setattr(table_module.time, "sleep", lambda s: real_sleep(min(s, 0.005)))


def test_one_writer_makes_each_batch_only_after_the_previous_one_was_answered() -> None:
    client = Client()
    assert Table("t", client=client, in_flight=1).batch_put(client.items(60)) == 3  # type: ignore[arg-type]
    made_at = {n: i for i, (kind, n) in enumerate(client.log) if kind == "made"}
    answers = [i for i, (kind, _) in enumerate(client.log) if kind == "answered"]
    assert made_at[24] < answers[0] < made_at[25]  # the second batch is made after the first is written
    assert made_at[49] < answers[1] < made_at[50]
    assert client.written() == list(range(60))


def test_parallel_writers_never_make_more_than_their_batches_ahead_of_the_writes() -> None:
    client = Client()
    assert Table("t", client=client, in_flight=8).batch_put(client.items(1000)) == 40  # type: ignore[arg-type]
    assert client.written() == list(range(1000))  # each item once
    made = answered = 0
    for kind, value in client.log:
        if kind == "made":
            made += 1
        else:
            answered += len(value)
        # at most one batch per writer is made and not yet answered
        assert made - answered <= 8 * 25


def test_a_short_stream_is_one_request_without_threads() -> None:
    client = Client()
    before = threading.active_count()
    assert Table("t", client=client).batch_put(client.items(25)) == 1  # type: ignore[arg-type]
    assert threading.active_count() == before
    assert Table("t", client=client).batch_put([]) == 0  # type: ignore[arg-type]


def test_unprocessed_items_are_sent_again() -> None:
    client = Client(unprocessed_once=True)
    assert Table("t", client=client).batch_put(client.items(50)) == 3  # type: ignore[arg-type]
    assert client.written() == list(range(50))


def test_a_failed_write_stops_the_other_writers_from_making_more_items() -> None:
    client = Client(fail_on=3)
    with pytest.raises(RuntimeError):
        Table("t", client=client, in_flight=8).batch_put(client.items(10_000))  # type: ignore[arg-type]
    made = sum(1 for kind, _ in client.log if kind == "made")
    assert made <= (3 + 2 * 8) * 25  # far from all 10,000


def test_an_outage_during_a_batch_write_is_503() -> None:
    from botocore.exceptions import ClientError

    class Down(Client):
        def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
            raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "BatchWriteItem")

    client = Down()
    with pytest.raises(DatastoreUnavailable):
        Table("t", client=client).batch_put(client.items(100))  # type: ignore[arg-type]
