"""DynamoDB fixes for moto, installed by local mode, the tests and the benches.

1. **Atomic conditional writes.** moto server is multi-threaded and does not
   serialize writes: two conditional writes (or transactions) on one item can
   both pass their condition. DynamoDB never allows that, and the ceiling, the
   state machine and "exactly one winner" depend on it. One lock makes every
   write and transaction atomic, as DynamoDB's are.
2. **Transactions without whole-table copies.** moto snapshots every table a
   transaction touches (``copy.deepcopy``) to roll back, which makes each
   transaction O(table size): registering the thousandth node took seconds.
   This version checks every condition first and writes only when all hold
   (DynamoDB's semantics), keeping copies of the touched items alone for the
   unlikely failure while writing.
3. **Item responses without the generic serializer.** moto renders every
   response by walking the operation's output shape attribute by attribute
   (a few milliseconds per node item, most of a 10,000-node cohort read).
   DynamoDB's JSON protocol *is* the result document, whose items moto already
   holds in wire form, so item operations' results are written with
   ``json.dumps``; anything that is not plain JSON falls back to moto's path.
4. **Request routing without a directory listing.** moto server finds the
   backend for every request by listing moto's package directory (``isdir``
   on each of ~200 entries) and then matching the host against every
   service's URL patterns, all under one global lock. The answer depends on
   the host name alone, so it is remembered per host.
5. **Item and Query costs that grow with the table** are removed in
   ``orchestrator_local.moto_speed`` (see there), with differential tests
   against moto's own code.
6. **Item requests without the generic parser.** moto parses every request by
   walking the input shape too: each attribute value of each item, member by
   member (~8 ms of a fan-out's 25-event BatchWriteItem here; ~3 ms so). An
   attribute value is taken as the JSON has it (binaries decoded, as moto does).
7. **An account's backend found without a scan.** Every lookup of a service's
   backend (several per request) took moto's global backend lock and compared
   the dict with each of ~200 registered ones (``self not in _instances``), to
   register it for reset: once registered, it is only looked up.

Only the lock (1) is needed for correctness. The others (2-7) replace moto internals and
were written, and differentially tested, against moto ``SPEED_PATCHES_MOTO``: on any other
moto version they stay off with a warning (the lock then wraps moto's own transactions),
and ``LOCAL_MOTO_SPEED=0`` turns them off on purpose (CI runs part of the suite so).
"""

from __future__ import annotations

import copy
import json
import os
import threading
import warnings
from typing import Any

from orchestrator_local import firehose, moto_speed

_LOCK = threading.RLock()
_installed = False
ORIGINALS: dict[str, Any] = {}  # moto's own implementations the patches replace (differential tests)
SPEED_PATCHES_MOTO = "5.2.5"  # the moto the speed patches replace internals of, and are tested against


def speed_patches_enabled() -> bool:
    """Whether the speed patches go in: on the moto they were written for, unless
    ``LOCAL_MOTO_SPEED=0``."""
    import moto

    if os.environ.get("LOCAL_MOTO_SPEED", "1") == "0":
        return False
    if moto.__version__ != SPEED_PATCHES_MOTO:
        warnings.warn(
            f"moto {moto.__version__} is not {SPEED_PATCHES_MOTO}: local mode's speed patches are off"
            " (writes stay atomic; large fleets are slower)",
            RuntimeWarning,
            stacklevel=2,
        )
        return False
    return True


def write_lock() -> threading.RLock:
    """The lock every moto write holds (a stream is trimmed only under it)."""
    return _LOCK


def install() -> None:
    global _installed  # noqa: PLW0603 - patched once per process
    if _installed:
        return
    from moto.dynamodb.models import DynamoDBBackend

    firehose.install()  # dynamic partitioning, as the template's telemetry stream needs
    for name in ("put_item", "update_item", "delete_item", "batch_write_item"):
        original = getattr(DynamoDBBackend, name, None)
        if original is not None:
            setattr(DynamoDBBackend, name, _locked(original))
    if speed_patches_enabled():
        ORIGINALS["transact_write_items"] = DynamoDBBackend.transact_write_items
        DynamoDBBackend.transact_write_items = _transact_write_items  # type: ignore[method-assign]
        _install_fast_item_responses()
        _install_fast_item_requests()
        _install_routing_cache()
        _install_backend_lookup()
        moto_speed.install(_LOCK)
    else:
        DynamoDBBackend.transact_write_items = _locked(DynamoDBBackend.transact_write_items)  # type: ignore[method-assign]
    _installed = True


# Operations whose results are items and counts only (no timestamps, no model objects).
_ITEM_OPERATIONS = frozenset(
    {
        "GetItem",
        "BatchGetItem",
        "Query",
        "Scan",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "TransactWriteItems",
        "TransactGetItems",
    }
)


def _install_fast_item_responses() -> None:
    from moto.core.responses import ActionResult

    original = ORIGINALS["execute_result"] = ActionResult.execute_result

    def execute_result(self: Any, context: Any) -> Any:
        operation = context.operation_model
        result = self.result
        if (
            isinstance(result, dict)
            and operation.name in _ITEM_OPERATIONS
            and operation.service_model.service_name == "dynamodb"
        ):
            try:
                body = json.dumps(_without_none(result))
            except (TypeError, ValueError):
                return original(self, context)
            return 200, {"Content-Type": "application/x-amz-json-1.0"}, body
        return original(self, context)

    ActionResult.execute_result = execute_result  # type: ignore[method-assign]


def _install_fast_item_requests() -> None:
    """Requests' attribute values are taken as the JSON has them (binaries decoded), instead of
    walking each one's ten members against the model: a 25-item BatchWriteItem is a few
    thousand of them."""
    from moto.core.parse import BaseJSONParser

    original: Any = BaseJSONParser._parse_structure  # untyped in moto
    ORIGINALS["parse_structure"] = original

    def parse_structure(self: Any, shape: Any, value: Any) -> Any:
        if shape.name == "AttributeValue" and isinstance(value, dict) and shape.type_name == "structure":
            return _attribute_value(self._blob_parser, value)
        return original(self, shape, value)

    BaseJSONParser._parse_structure = parse_structure  # type: ignore[method-assign]


_PLAIN_MEMBERS = frozenset({"S", "N", "SS", "NS", "NULL", "BOOL"})


def _attribute_value(blob: Any, value: dict[str, Any]) -> dict[str, Any]:
    """moto's parse of one AttributeValue: its members (unknown ones dropped, null ones too)."""
    parsed: dict[str, Any] = {}
    for tag, member in value.items():
        if member is None:
            continue
        if tag in _PLAIN_MEMBERS:
            parsed[tag] = member
        elif tag == "M":
            parsed[tag] = {k: _attribute_value(blob, v) if isinstance(v, dict) else v for k, v in member.items()}
        elif tag == "L":
            parsed[tag] = [_attribute_value(blob, v) if isinstance(v, dict) else v for v in member]
        elif tag == "B":
            parsed[tag] = blob(member)
        elif tag == "BS":
            parsed[tag] = [blob(v) for v in member]
    return parsed


def _install_backend_lookup() -> None:
    from moto.core.base_backend import BackendDict

    original = ORIGINALS["backend_dict_getitem"] = BackendDict.__getitem__

    def getitem(self: Any, account_id: str) -> Any:
        # An account's backend is only ever added by _create_account_specific_backend, which
        # also registers the dict for moto's reset; a reset empties both. So one present is
        # registered already.
        if dict.__contains__(self, account_id):
            return dict.__getitem__(self, account_id)
        return original(self, account_id)

    BackendDict.__getitem__ = getitem  # type: ignore[method-assign]


def _install_routing_cache() -> None:
    try:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    except ImportError:  # moto without its server extra: in-process mocks only
        return
    original = ORIGINALS["get_backend_for_host"] = DomainDispatcherApplication.get_backend_for_host
    cache: dict[str, Any] = {}

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        if host is None:
            return None
        if host not in cache:
            cache[host] = original(self, host)
        return cache[host]

    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]


# Members that hold items or keys in DynamoDB JSON, which never contain None: not walked.
_ITEM_MEMBERS = frozenset({"Item", "Items", "Attributes", "LastEvaluatedKey", "Key"})


def _without_none(value: Any) -> Any:
    """The serializer leaves out members that are None; so does this (items are left as they
    are: moto renders them with ``to_json``, which writes a type for every value)."""
    if isinstance(value, dict):
        return {k: v if k in _ITEM_MEMBERS else _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


def _locked(method: Any) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return method(*args, **kwargs)

    wrapper.__wrapped__ = method  # type: ignore[attr-defined]
    return wrapper


def _transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    from moto.dynamodb.exceptions import TooManyTransactionsException, TransactionCanceledException

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    with _LOCK:
        plan, errors = _check(self, transact_items)
        if any(code is not None for code, _, _ in errors):
            raise TransactionCanceledException(errors)
        _write(self, plan)


Step = tuple[str, dict[str, Any], str, dict[str, Any]]


def _key_of(self: Any, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        key: dict[str, Any] = op["Key"]
        return key
    table = self.get_table(op["TableName"])
    key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = op["Item"][table.range_key_attr]
    return key


def _check(self: Any, transact_items: list[dict[str, Any]]) -> tuple[list[Step], list[Any]]:
    """Every condition, evaluated before anything is written."""
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import MultipleTransactionsException, TransactWriteSingleOpException

    seen: set[tuple[str, str]] = set()
    plan: list[Step] = []
    errors: list[Any] = []
    for entry in transact_items:
        if len(entry) > 1:
            raise TransactWriteSingleOpException
        op_type, op = next(iter(entry.items()))
        key = _key_of(self, op_type, op)
        marker = (str(op["TableName"]), str(dict(sorted(key.items()))))
        if marker in seen:
            raise MultipleTransactionsException()
        seen.add(marker)
        current = self.get_item(op["TableName"], key)
        condition = op.get("ConditionExpression")
        holds = condition is None or get_filter_expression(
            condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
        ).expr(current)
        if holds:
            errors.append((None, None, None))
        else:
            wants_old = op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
            old = current.to_json()["Attributes"] if current and wants_old else None
            errors.append(("ConditionalCheckFailed", "The conditional request failed", old))
        plan.append((op_type, op, op["TableName"], key))
    return plan, errors


def _write(self: Any, plan: list[Step]) -> None:
    """Apply the checked writes; restore the touched items if one of them fails."""
    before = [(name, key, copy.deepcopy(self.get_item(name, key))) for _, _, name, key in plan]
    try:
        for op_type, op, table_name, key in plan:
            if op_type == "Put":
                self.put_item(table_name, op["Item"])
            elif op_type == "Delete":
                self.delete_item(table_name, key)
            elif op_type == "Update":
                self.update_item(
                    table_name,
                    key,
                    update_expression=op["UpdateExpression"],
                    expression_attribute_names=op.get("ExpressionAttributeNames"),
                    expression_attribute_values=op.get("ExpressionAttributeValues"),
                )
    except Exception:
        for table_name, key, item in before:
            if item is None:
                self.delete_item(table_name, key)
            else:
                self.put_item(table_name, item.to_json()["Attributes"])
        raise
