"""A transaction cancelled only by a concurrent one (TransactionConflict) wrote nothing and is
sent again; a refused condition is the caller's to answer; a lasting conflict is 503."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from orchestrator.errors import DatastoreUnavailable
from orchestrator.store import table as table_module
from orchestrator.store.table import Table, TransactionCanceled


def cancelled(*codes: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
            "CancellationReasons": [{"Code": code} for code in codes],
        },
        "TransactWriteItems",
    )


class Client:
    def __init__(self, *answers: ClientError | None) -> None:
        self.answers = list(answers)
        self.calls = 0

    def transact_write_items(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        answer = self.answers.pop(0)
        if answer is not None:
            raise answer
        return {}


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(table_module.time, "sleep", lambda _: None)


def test_a_conflict_is_sent_again_until_it_lands() -> None:
    client = Client(cancelled("None", "TransactionConflict"), cancelled("TransactionConflict", "None"), None)
    Table("t", client=client).transact([])  # type: ignore[arg-type]
    assert client.calls == 3


def test_a_lasting_conflict_is_503_not_500() -> None:
    client = Client(*[cancelled("TransactionConflict")] * table_module.TRANSACTION_ATTEMPTS)
    with pytest.raises(DatastoreUnavailable):
        Table("t", client=client).transact([])  # type: ignore[arg-type]
    assert client.calls == table_module.TRANSACTION_ATTEMPTS


def test_a_refused_condition_is_the_callers_even_beside_a_conflict() -> None:
    client = Client(cancelled("ConditionalCheckFailed", "TransactionConflict"))
    with pytest.raises(TransactionCanceled) as refused:
        Table("t", client=client).transact([])  # type: ignore[arg-type]
    assert refused.value.reasons == ["ConditionalCheckFailed", "TransactionConflict"]
    assert client.calls == 1
