"""A thin typed wrapper over the DynamoDB client for the single table.

It marshals items, and translates the datastore's failures: outages become
:class:`DatastoreUnavailable` (503); condition failures are returned to the
caller (the store module that knows which transition failed).
"""

from __future__ import annotations

import base64
import itertools
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import Binary, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from orchestrator import aws
from orchestrator.errors import DatastoreUnavailable
from orchestrator.observability import logger
from orchestrator.store.keys import Key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

Item = dict[str, Any]

_serializer = TypeSerializer()

TRANSACTION_ATTEMPTS = 5  # a transaction that lost a TransactionConflict is sent again
TRANSACTION_BACKOFF_SECONDS = 0.025
BATCH_PARALLELISM = 8  # batch writes in flight at once, by default (boto3 clients are thread-safe)
BATCH_SIZE = 25  # items per BatchWriteItem (DynamoDB's limit)

OUTAGE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "ResourceNotFoundException",
    }
)


class ConditionFailed(Exception):
    """A conditional write did not hold. ``item`` is the current item when asked for."""

    def __init__(self, item: Item | None = None) -> None:
        super().__init__("condition failed")
        self.item = item


class TransactionCanceled(Exception):
    """A transaction was cancelled; ``reasons[i]`` is the code for the i-th operation."""

    def __init__(self, reasons: list[str | None], items: list[Item | None] | None = None) -> None:
        super().__init__(f"transaction canceled: {reasons}")
        self.reasons = reasons
        self.items = items or [None] * len(reasons)


def serialize(item: Mapping[str, Any]) -> dict[str, Any]:
    """An item's attribute values (top-level None attributes left out), as boto3's
    ``TypeSerializer`` writes them (floats as their shortest decimal text): strings, whole
    numbers, booleans, maps, lists and None in one pass here, anything else by boto3's."""
    return {k: _attribute(v) for k, v in item.items() if v is not None}


def _attribute(value: Any) -> dict[str, Any]:
    write = _WRITERS.get(type(value))
    if write is not None:
        return write(value)
    if type(value) is int and -_MAX_WHOLE < value < _MAX_WHOLE:
        return {"N": str(value)}
    return dict(_serializer.serialize(_to_dynamo(value)))


def _list(values: Iterable[Any]) -> dict[str, Any]:
    return {"L": [_attribute(v) for v in values]}


_WRITERS: dict[type, Callable[[Any], dict[str, Any]]] = {
    str: lambda value: {"S": value},
    bool: lambda value: {"BOOL": value},
    dict: lambda value: {"M": {k: _attribute(v) for k, v in value.items()}},
    list: _list,
    tuple: _list,
    type(None): lambda _: {"NULL": True},
}
_MAX_WHOLE = 10**38  # DynamoDB numbers have 38 digits; boto3 refuses more


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_dynamo(v) for v in value]
    return value


def deserialize(raw: Mapping[str, Any]) -> Item:
    """An item from its attribute values (botocore's, or the wire's JSON as
    :func:`orchestrator.aws.raw_items` keeps it, where a binary is base64 text), in one
    pass: numbers become int (when integral) or float, sets lists, binaries bytes."""
    return {k: _value(v) for k, v in raw.items()}


def _value(attribute: Mapping[str, Any]) -> Any:
    ((tag, value),) = attribute.items()
    if tag == "S":
        return value
    decode = _DECODERS.get(tag)
    if decode is None:
        raise TypeError(f"not a DynamoDB attribute value type: {tag}")
    return decode(value)


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        number = Decimal(text)
        return int(number) if number == number.to_integral_value() else float(number)


def _binary(value: Any) -> bytes:
    if isinstance(value, Binary):
        return bytes(value.value)  # type: ignore[attr-defined]
    return bytes(value) if isinstance(value, bytes | bytearray) else base64.b64decode(value)


_DECODERS: dict[str, Callable[[Any], Any]] = {
    "N": _number,
    "BOOL": bool,
    "NULL": lambda _: None,
    "M": deserialize,
    "L": lambda values: [_value(v) for v in values],
    "SS": list,
    "NS": lambda values: [_number(v) for v in values],
    "B": _binary,
    "BS": lambda values: [_binary(v) for v in values],
}


@contextmanager
def datastore_errors() -> Iterator[None]:
    """Turn an unavailable datastore into 503; let every other error through."""
    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in OUTAGE_CODES:
            logger.warning("datastore unavailable", error_code=code)
            raise DatastoreUnavailable("The datastore is temporarily unavailable.") from exc
        raise
    except BotoCoreError as exc:
        logger.warning("datastore unreachable", error=type(exc).__name__)
        raise DatastoreUnavailable("The datastore is temporarily unavailable.") from exc


def _project(kwargs: dict[str, Any], attributes: Sequence[str]) -> None:
    """Ask a read for only ``attributes`` (placeholders: any name, reserved words included)."""
    if attributes:
        projected = {f"#p{i}": name for i, name in enumerate(attributes)}
        kwargs["ProjectionExpression"] = ", ".join(projected)
        kwargs["ExpressionAttributeNames"] = {**kwargs.get("ExpressionAttributeNames", {}), **projected}


class Table:
    """Operations on one table. Every write that changes state is conditional."""

    def __init__(self, name: str, client: DynamoDBClient | None = None, *, in_flight: int = BATCH_PARALLELISM) -> None:
        """``in_flight``: how many batch writes :meth:`batch_put` keeps in flight at once."""
        self.name = name
        self._client = aws.raw_items(client) if client is not None else None
        self.in_flight = max(1, in_flight)

    @property
    def client(self) -> DynamoDBClient:
        return self._client or aws.dynamodb()

    def get(self, key: Key, *, consistent: bool = False, attributes: Sequence[str] = ()) -> Item | None:
        """The item, or only ``attributes`` of it (a smaller response; the same read cost)."""
        kwargs: dict[str, Any] = {"TableName": self.name, "Key": serialize(key), "ConsistentRead": consistent}
        _project(kwargs, attributes)
        with datastore_errors():
            response = self.client.get_item(**kwargs)
        raw = response.get("Item")
        return deserialize(raw) if raw else None

    def batch_get(self, keys: Sequence[Key]) -> list[Item]:
        """Up to 100 keys; unprocessed keys are retried."""
        pending: list[dict[str, Any]] = [serialize(k) for k in keys]
        found: list[Item] = []
        while pending:
            with datastore_errors():
                response: dict[str, Any] = dict(
                    self.client.batch_get_item(RequestItems={self.name: {"Keys": pending[:100]}})
                )
            found.extend(deserialize(i) for i in response.get("Responses", {}).get(self.name, []))
            unprocessed = response.get("UnprocessedKeys", {}).get(self.name, {}).get("Keys", [])
            pending = list(unprocessed) + pending[100:]
        return found

    def batch_put(self, items: Iterable[Mapping[str, Any]]) -> int:
        """Unconditional puts, 25 per request, up to ``in_flight`` requests at once,
        each retrying its unprocessed items with backoff. Returns the number of requests made
        (the cost callers report).

        ``items`` is consumed lazily: a writer takes the next 25 only when it is free to send
        them, so an item made by a generator is made right before its own request, whatever
        the length of the stream (fan-out mints event ids so), and the requests follow each
        other without waiting for whole rounds to finish."""
        source = iter(items)
        taking = threading.Lock()
        failed = threading.Event()

        def take() -> list[dict[str, Any]]:
            with taking:  # the generator runs on one writer at a time
                chunk = [] if failed.is_set() else list(itertools.islice(source, BATCH_SIZE))
            return [{"PutRequest": {"Item": serialize(item)}} for item in chunk]

        def writer(chunk: list[dict[str, Any]] | None = None) -> int:
            requests = 0
            try:
                chunk = take() if chunk is None else chunk
                while chunk:
                    requests += self._write_chunk(chunk)
                    chunk = take()
            except BaseException:
                failed.set()  # the other writers stop taking items
                raise
            return requests

        first = take()
        second = take() if first and self.in_flight > 1 else []
        if not second:
            return writer(first) if first else 0
        with ThreadPoolExecutor(max_workers=self.in_flight - 1) as pool:
            others = [pool.submit(writer, second), *(pool.submit(writer) for _ in range(self.in_flight - 2))]
            requests = writer(first)  # this thread is a writer too
            return requests + sum(future.result() for future in others)

    def _write_chunk(self, chunk: list[dict[str, Any]]) -> int:
        requests, attempt, pending = 0, 0, chunk
        while pending:
            with datastore_errors():
                response: dict[str, Any] = dict(
                    self.client.batch_write_item(RequestItems={self.name: pending})  # type: ignore[dict-item]
                )
            requests += 1
            pending = response.get("UnprocessedItems", {}).get(self.name, [])
            if pending:
                attempt += 1
                if attempt > 8:
                    raise DatastoreUnavailable("The datastore is temporarily unavailable.")
                time.sleep(min(0.05 * 2**attempt, 1.0))
        return requests

    def query_all(
        self,
        *,
        index: str | None,
        key_condition: str,
        values: Mapping[str, Any],
        names: Mapping[str, str] | None = None,
        filter_expression: str | None = None,
        consistent: bool = False,
        attributes: Sequence[str] = (),
    ) -> Iterator[Item]:
        """Every item of a query, page after page (only ``attributes`` of each, if given:
        smaller pages to transfer and parse; DynamoDB reads, and charges, the same)."""
        kwargs = self._query_kwargs(index, key_condition, values, names, filter_expression)
        if consistent and not index:
            kwargs["ConsistentRead"] = True
        _project(kwargs, attributes)
        while True:
            with datastore_errors():
                response: dict[str, Any] = dict(self.client.query(**kwargs))
            yield from (deserialize(i) for i in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _query_kwargs(
        self,
        index: str | None,
        key_condition: str,
        values: Mapping[str, Any],
        names: Mapping[str, str] | None,
        filter_expression: str | None,
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": key_condition,
            "ExpressionAttributeValues": serialize(values),
        }
        if index:
            kwargs["IndexName"] = index
        if names:
            kwargs["ExpressionAttributeNames"] = dict(names)
        if filter_expression:
            kwargs["FilterExpression"] = filter_expression
        return kwargs

    def put(
        self,
        item: Mapping[str, Any],
        *,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> None:
        kwargs: dict[str, Any] = dict(self.put_op(item, condition=condition, names=names, values=values)["Put"])
        self._conditional(lambda: self.client.put_item(**kwargs))

    def update(
        self,
        key: Key,
        *,
        update: str,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
        returns: str = "ALL_NEW",
    ) -> Item:
        """Conditional update; returns the item as ``returns`` says (ALL_NEW, ALL_OLD, NONE)."""
        kwargs: dict[str, Any] = dict(
            self.update_op(key, update=update, condition=condition, names=names, values=values)["Update"]
        )
        kwargs["ReturnValues"] = returns
        kwargs["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        response = self._conditional(lambda: self.client.update_item(**kwargs))
        return deserialize(response.get("Attributes", {}))

    def delete(self, key: Key, *, condition: str | None = None, values: Mapping[str, Any] | None = None) -> None:
        kwargs: dict[str, Any] = {"TableName": self.name, "Key": serialize(key)}
        self._add_condition(kwargs, condition, None, values)
        self._conditional(lambda: self.client.delete_item(**kwargs))

    def transact(self, operations: Sequence[TransactWriteItemTypeDef]) -> None:
        """All-or-nothing write; raises :class:`TransactionCanceled` with per-item reasons.

        A transaction cancelled only because another one was writing the same items
        (``TransactionConflict``: e.g. two registrations bumping their project's mesh version)
        wrote nothing, so it is sent again, up to ``TRANSACTION_ATTEMPTS`` times with a short
        jittered backoff; then 503 ``datastore_unavailable``, never a 500."""
        for attempt in range(1, TRANSACTION_ATTEMPTS + 1):
            try:
                self._transact_once(operations)
                return
            except TransactionCanceled as exc:
                conflicted = "TransactionConflict" in exc.reasons
                if not conflicted or "ConditionalCheckFailed" in exc.reasons:
                    raise
                if attempt == TRANSACTION_ATTEMPTS:
                    raise DatastoreUnavailable("The datastore is busy with concurrent changes; retry.") from exc
                time.sleep(random.uniform(0, TRANSACTION_BACKOFF_SECONDS * 2**attempt))  # noqa: S311 (jitter)

    def _transact_once(self, operations: Sequence[TransactWriteItemTypeDef]) -> None:
        try:
            with datastore_errors():
                self.client.transact_write_items(TransactItems=list(operations))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            error: dict[str, Any] = dict(exc.response)
            reasons: list[dict[str, Any]] = error.get("CancellationReasons", [])
            codes: list[str | None] = [
                (r.get("Code") if r.get("Code") not in (None, "None") else None) for r in reasons
            ]
            if any(c in OUTAGE_CODES or c == "ThrottlingError" for c in codes):
                raise DatastoreUnavailable("The datastore is temporarily unavailable.") from exc
            old_items = [deserialize(r["Item"]) if r.get("Item") else None for r in reasons]
            raise TransactionCanceled(codes, old_items) from exc

    def put_op(
        self,
        item: Mapping[str, Any],
        *,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> TransactWriteItemTypeDef:
        op: dict[str, Any] = {"TableName": self.name, "Item": serialize(item)}
        self._add_condition(op, condition, names, values)
        return {"Put": op}  # type: ignore[typeddict-item]

    def update_op(
        self,
        key: Key,
        *,
        update: str,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
        old_on_failure: bool = False,
    ) -> TransactWriteItemTypeDef:
        op: dict[str, Any] = {"TableName": self.name, "Key": serialize(key), "UpdateExpression": update}
        self._add_condition(op, condition, names, values)
        if old_on_failure:
            op["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        return {"Update": op}  # type: ignore[typeddict-item]

    def condition_check_op(self, key: Key, *, condition: str) -> TransactWriteItemTypeDef:
        return {"ConditionCheck": {"TableName": self.name, "Key": serialize(key), "ConditionExpression": condition}}

    def delete_op(
        self,
        key: Key,
        *,
        condition: str | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> TransactWriteItemTypeDef:
        op: dict[str, Any] = {"TableName": self.name, "Key": serialize(key)}
        self._add_condition(op, condition, None, values)
        return {"Delete": op}  # type: ignore[typeddict-item]

    def query_page(
        self,
        *,
        index: str | None,
        key_condition: str,
        values: Mapping[str, Any],
        names: Mapping[str, str] | None = None,
        filter_expression: str | None = None,
        limit: int,
        start_key: Mapping[str, Any] | None = None,
        forward: bool = True,
        consistent: bool = False,
    ) -> tuple[list[Item], dict[str, Any] | None]:
        """One page of a query: at most ``limit`` items, and the key to continue
        from, which is None exactly when there is nothing more (one extra item
        is read to know, so a full last page does not yield an empty next page).
        With a filter, DynamoDB pages are read until the page is full."""
        kwargs = self._query_kwargs(index, key_condition, values, names, filter_expression)
        kwargs |= {"Limit": limit + 1, "ScanIndexForward": forward}
        if consistent and not index:
            kwargs["ConsistentRead"] = True
        if start_key:
            kwargs["ExclusiveStartKey"] = serialize(start_key)
        items: list[Item] = []
        while len(items) <= limit:
            with datastore_errors():
                response: dict[str, Any] = dict(self.client.query(**kwargs))
            items.extend(deserialize(i) for i in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                break
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        if len(items) <= limit:
            return items, None
        items = items[:limit]
        key_names = ["PK", "SK"] + ([f"{index}PK", f"{index}SK"] if index else [])
        return items, {name: items[-1][name] for name in key_names}

    @staticmethod
    def _add_condition(
        kwargs: dict[str, Any],
        condition: str | None,
        names: Mapping[str, str] | None,
        values: Mapping[str, Any] | None,
    ) -> None:
        if condition:
            kwargs["ConditionExpression"] = condition
        if names:
            kwargs["ExpressionAttributeNames"] = dict(names)
        if values:
            kwargs["ExpressionAttributeValues"] = serialize(values)

    def _conditional(self, call: Any) -> Any:
        try:
            with datastore_errors():
                return call()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                error: dict[str, Any] = dict(exc.response)
                raw = error.get("Item")
                raise ConditionFailed(deserialize(raw) if raw else None) from exc
            raise
