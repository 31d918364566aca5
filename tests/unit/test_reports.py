"""The report rules (SPEC §18): the version rule and what one batch may hold."""

from __future__ import annotations

import pytest

from orchestrator.domain.reports import (
    MAX_BATCH_ITEMS,
    MAX_PAYLOAD_BYTES,
    ReportBatch,
    ReportEntry,
    accepts_version,
    check_batch,
    conflicting_keys,
    duplicate_keys,
)
from orchestrator.errors import InvalidBody, ReportBatchTooLarge, ReportPayloadTooLarge


def entry(key: str, version: int = 1, payload_json: str = "{}") -> ReportEntry:
    return ReportEntry(key=key, content_type="", payload_json=payload_json, version=version, updated_at="")


@pytest.mark.parametrize(
    ("stored", "incoming", "accepted"),
    [
        (None, 0, True),  # a new key takes any version
        (None, 7, True),
        (4, 5, True),
        (4, 4, False),  # not greater: a replay or a concurrent writer
        (4, 3, False),
        (0, 0, False),
        (2**63 - 2, 2**63 - 1, True),
    ],
)
def test_an_entry_replaces_its_key_only_with_a_greater_version(
    stored: int | None, incoming: int, accepted: bool
) -> None:
    assert accepts_version(stored, incoming) is accepted


def test_a_batch_of_exactly_the_transaction_limit_passes() -> None:
    half = MAX_BATCH_ITEMS // 2
    check_batch(
        ReportBatch(entries=tuple(entry(f"e{i}") for i in range(half)), deleted=tuple(f"d{i}" for i in range(half)))
    )


def test_one_item_past_the_transaction_limit_is_413() -> None:
    batch = ReportBatch(entries=(entry("e"),), deleted=tuple(f"d{i}" for i in range(MAX_BATCH_ITEMS)))
    with pytest.raises(ReportBatchTooLarge) as raised:
        check_batch(batch)
    assert raised.value.extensions == {"limit": MAX_BATCH_ITEMS}


def test_a_payload_past_the_item_budget_is_413_naming_its_key() -> None:
    at_limit = entry("fits", payload_json='"' + "x" * (MAX_PAYLOAD_BYTES - 2) + '"')
    over = entry("huge", payload_json='"' + "é" * (MAX_PAYLOAD_BYTES // 2) + '"')  # counted in UTF-8 bytes
    check_batch(ReportBatch(entries=(at_limit,), deleted=()))
    with pytest.raises(ReportPayloadTooLarge) as raised:
        check_batch(ReportBatch(entries=(at_limit, over), deleted=()))
    assert raised.value.extensions == {"keys": ["huge"]}


@pytest.mark.parametrize(
    ("entries", "deleted", "repeated"),
    [
        (["a", "b"], ["c"], []),
        (["a", "a"], [], ["a"]),
        (["a"], ["a"], ["a"]),  # written and deleted in one batch: one item touched twice
        ([], ["b", "a", "b", "a"], ["b", "a"]),
    ],
)
def test_a_key_may_appear_once_per_batch(entries: list[str], deleted: list[str], repeated: list[str]) -> None:
    batch = ReportBatch(entries=tuple(entry(k) for k in entries), deleted=tuple(deleted))
    assert duplicate_keys([*entries, *deleted]) == repeated
    if repeated:
        with pytest.raises(InvalidBody) as raised:
            check_batch(batch)
        assert raised.value.extensions == {"keys": repeated}
    else:
        check_batch(batch)


def test_the_conflicting_keys_are_the_entries_whose_condition_failed() -> None:
    batch = ReportBatch(entries=(entry("a"), entry("b"), entry("c")), deleted=("d",))
    reasons = ["ConditionalCheckFailed", None, "ConditionalCheckFailed", None]
    assert conflicting_keys(batch, reasons) == ["a", "c"]
    assert conflicting_keys(batch, [None, "TransactionConflict", None, None]) == []
