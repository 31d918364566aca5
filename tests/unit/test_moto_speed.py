"""Local mode's moto speed fixes give moto's own answers (differential tests against ``ORIGINALS``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from moto import mock_aws
from moto.dynamodb.exceptions import ItemSizeTooLarge
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table

from orchestrator_local import moto_patches, moto_speed

moto_patches.install()
ORIGINALS = moto_speed.ORIGINALS

# DynamoDB JSON values; numbers in canonical form (moto's projection round-trips them through Decimal).
names = st.text(alphabet="abcdefgh", min_size=1, max_size=4)
scalars = st.one_of(
    st.builds(lambda s: {"S": s}, st.text(max_size=12)),
    st.builds(lambda n: {"N": str(n)}, st.integers(-(10**12), 10**12)),
    st.builds(lambda b: {"BOOL": b}, st.booleans()),
    st.just({"NULL": True}),
    st.builds(lambda b: {"B": b}, st.binary(max_size=8)),
    st.builds(lambda s: {"SS": sorted(s)}, st.sets(st.text(min_size=1, max_size=5), min_size=1, max_size=4)),
    st.builds(lambda s: {"NS": sorted(str(n) for n in s)}, st.sets(st.integers(0, 999), min_size=1, max_size=4)),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.builds(lambda xs: {"L": xs}, st.lists(inner, max_size=4)),
        st.builds(lambda m: {"M": m}, st.dictionaries(names, inner, max_size=4)),
    ),
    max_leaves=12,
)
attribute_maps = st.dictionaries(names, values, max_size=6)


def original_item(attrs: dict[str, Any]) -> Item:
    item = Item.__new__(Item)
    ORIGINALS["item_init"](item, DynamoType({"S": "h"}), None, attrs)
    return item


def canonical(value: Any) -> Any:
    """A rendered item with set members in a fixed order (sets are unordered in DynamoDB)."""
    if isinstance(value, dict):
        return {k: sorted(v) if k in {"SS", "NS", "BS"} else canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


@given(values)
def test_sizes_and_cast_values_are_moto_s(value: dict[str, Any]) -> None:
    typed = DynamoType(value)
    assert moto_speed.size_of(typed) == ORIGINALS["size"](typed)
    assert typed.cast_value == ORIGINALS["cast_value"](typed)


@given(attribute_maps)
def test_items_are_built_as_moto_builds_them(attrs: dict[str, Any]) -> None:
    built = Item(DynamoType({"S": "h"}), None, attrs)
    assert built.to_json() == original_item(attrs).to_json()
    assert built.size() == original_item(attrs).size()


@pytest.mark.parametrize("filler", [404_000, 404_999, 405_000, 406_000])
def test_the_item_size_limit_is_moto_s_at_its_edge(filler: int) -> None:
    attrs = {"a": {"S": "x" * filler}}  # key "a" adds one byte
    outcomes = []
    for build in (lambda: Item(DynamoType({"S": "h"}), None, attrs), lambda: original_item(attrs)):
        try:
            build()
            outcomes.append("ok")
        except ItemSizeTooLarge:
            outcomes.append("too large")
    assert outcomes[0] == outcomes[1]


@given(attribute_maps, st.lists(names, min_size=1, max_size=4))
def test_top_level_projections_are_moto_s(attrs: dict[str, Any], wanted: list[str]) -> None:
    item = Item(DynamoType({"S": "h"}), None, attrs)
    paths = [[name] for name in wanted]
    fast = item.project(paths).to_json()
    assert canonical(fast) == canonical(ORIGINALS["item_project"](item, paths).to_json())


# Queries ---------------------------------------------------------------------------------------
TABLE = "speed"


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("dynamodb", region_name="us-east-1")


def fresh_table(client: Any) -> None:
    if TABLE in client.list_tables()["TableNames"]:
        client.delete_table(TableName=TABLE)
    client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "PK", "AttributeType": "S"},
            {"AttributeName": "SK", "AttributeType": "S"},
            {"AttributeName": "G", "AttributeType": "S"},
            {"AttributeName": "GN", "AttributeType": "N"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "ByG",
                "KeySchema": [{"AttributeName": "G", "KeyType": "HASH"}, {"AttributeName": "GN", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": "ByGKeys",
                "KeySchema": [{"AttributeName": "G", "KeyType": "HASH"}, {"AttributeName": "GN", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            },
        ],
        BillingMode="PAY_PER_REQUEST",
    )


rows = st.lists(
    st.fixed_dictionaries(
        {
            "PK": st.sampled_from(["p1", "p2"]),
            "SK": st.text(alphabet="abc", min_size=1, max_size=3),
            "G": st.sampled_from(["g1", "g2", None]),
            "GN": st.integers(0, 5),  # repeated index sort keys: ties broken by the table's keys
            "blob1": st.sampled_from([0, 0, 300_000]),  # some pages end on the 1 MB limit
        }
    ),
    max_size=25,
)

queries = st.fixed_dictionaries(
    {
        "index": st.sampled_from([None, "ByG", "ByGKeys"]),
        "range": st.sampled_from([None, "begins", "between", "gt"]),
        "limit": st.sampled_from([None, 1, 2, 5]),
        "forward": st.booleans(),
        "projection": st.sampled_from([None, "SK, blob1", "GN"]),
        "filter": st.booleans(),
    }
)


def query_kwargs(query: dict[str, Any]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"TableName": TABLE, "ScanIndexForward": query["forward"]}
    if query["index"]:
        kwargs["IndexName"] = query["index"]
        condition, values = "G = :h", {":h": {"S": "g1"}}
        ranges = {"between": "GN BETWEEN :a AND :b", "gt": "GN > :a", "begins": "GN > :a"}
        numbers = {":a": {"N": "1"}, ":b": {"N": "4"}}
    else:
        condition, values = "PK = :h", {":h": {"S": "p1"}}
        ranges = {"between": "SK BETWEEN :a AND :b", "gt": "SK > :a", "begins": "begins_with(SK, :a)"}
        numbers = {":a": {"S": "a"}, ":b": {"S": "b"}}
    if query["range"]:
        condition += f" AND {ranges[query['range']]}"
        wanted = {":a"} | ({":b"} if query["range"] == "between" else set())
        values |= {k: v for k, v in numbers.items() if k in wanted}
    kwargs |= {"KeyConditionExpression": condition, "ExpressionAttributeValues": values}
    if query["limit"]:
        kwargs["Limit"] = query["limit"]
    if query["projection"] and query["index"] != "ByGKeys":
        kwargs["ProjectionExpression"] = query["projection"]
    if query["filter"] and query["index"] != "ByGKeys":
        kwargs["FilterExpression"] = "attribute_exists(blob1)"
    return kwargs


def every_page(client: Any, kwargs: dict[str, Any]) -> list[dict[str, Any]]:
    pages, kwargs = [], dict(kwargs)
    for _ in range(100):
        page = client.query(**kwargs)
        page.pop("ResponseMetadata")
        pages.append(page)
        if "LastEvaluatedKey" not in page:
            return pages
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    raise AssertionError("no last page")


BIG_ROWS = [{"PK": "p1", "SK": f"s{i}", "G": "g1", "GN": i % 3, "blob1": 300_000} for i in range(8)]
EVERYTHING = {"index": None, "range": None, "limit": None, "forward": True, "projection": None, "filter": False}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows, query=queries)
@example(rows=BIG_ROWS, query=EVERYTHING)  # pages that end on the 1 MB limit
@example(rows=BIG_ROWS, query=EVERYTHING | {"index": "ByG", "forward": False})
def test_queries_answer_page_by_page_as_moto_does(
    client: Any, rows: list[dict[str, Any]], query: dict[str, Any]
) -> None:
    fresh_table(client)
    for row in rows:
        item = {"PK": {"S": row["PK"]}, "SK": {"S": row["SK"]}, "GN": {"N": str(row["GN"])}}
        if row["G"]:
            item["G"] = {"S": row["G"]}
        if row["blob1"]:
            item["blob1"] = {"S": "x" * row["blob1"]}
        client.put_item(TableName=TABLE, Item=item)
    kwargs = query_kwargs(query)
    fast = every_page(client, kwargs)
    Table.query = ORIGINALS["query"]  # type: ignore[method-assign]
    try:
        expected = every_page(client, kwargs)
    finally:
        Table.query = moto_speed.query  # type: ignore[method-assign]
    assert fast == expected


def test_errors_are_moto_s(client: Any) -> None:
    fresh_table(client)
    with pytest.raises(client.exceptions.ClientError, match="Invalid index"):
        client.query(
            TableName=TABLE,
            IndexName="Nope",
            KeyConditionExpression="G = :h",
            ExpressionAttributeValues={":h": {"S": "g1"}},
        )
    with pytest.raises(client.exceptions.ClientError, match="Consistent reads are not supported"):
        client.query(
            TableName=TABLE,
            IndexName="ByG",
            ConsistentRead=True,
            KeyConditionExpression="G = :h",
            ExpressionAttributeValues={":h": {"S": "g1"}},
        )


# Transactions ----------------------------------------------------------------------------------
keys_ = st.sampled_from(["a", "b", "c", "d"])
conditions = st.sampled_from(
    [None, "attribute_exists(PK)", "attribute_not_exists(PK)", "#v = :one", "#v <> :one", "attribute_exists(nope)"]
)
operations = st.tuples(
    st.sampled_from(["Put", "Update", "Delete", "ConditionCheck"]), keys_, conditions, st.integers(0, 2)
)
transactions = st.lists(operations, min_size=1, max_size=5, unique_by=lambda op: op[1])


def transact_item(kind: str, key: str, condition: str | None, value: int) -> dict[str, Any]:
    primary = {"PK": {"S": key}, "SK": {"S": "s"}}
    op: dict[str, Any] = {"TableName": TABLE}
    if kind == "Put":
        op["Item"] = {**primary, "v": {"N": str(value)}}
    else:
        op["Key"] = primary
    if kind == "Update":
        op["UpdateExpression"] = "SET v = :new"
        op["ExpressionAttributeValues"] = {":new": {"N": str(value)}}
    if kind == "ConditionCheck" and condition is None:
        condition = "attribute_exists(PK)"
    if condition is not None:
        op["ConditionExpression"] = condition
        if "#v" in condition:
            op["ExpressionAttributeNames"] = {"#v": "v"}
            op.setdefault("ExpressionAttributeValues", {})[":one"] = {"N": "1"}
        op["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    return {kind: op}


def outcome_of(client: Any, items: list[dict[str, Any]]) -> tuple[Any, list[Any]]:
    try:
        client.transact_write_items(TransactItems=items)
        result: Any = "ok"
    except client.exceptions.TransactionCanceledException as error:
        result = [(r.get("Code"), r.get("Item")) for r in error.response["CancellationReasons"]]
    rows = client.scan(TableName=TABLE)["Items"]
    return result, sorted(rows, key=lambda row: row["PK"]["S"])


@given(st.dictionaries(keys_, st.integers(0, 2), max_size=4), transactions)
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_transactions_answer_and_write_as_moto_s(client: Any, existing: dict[str, int], ops: list[Any]) -> None:
    from moto.dynamodb.models import DynamoDBBackend

    items = [transact_item(*op) for op in ops]
    results = []
    for implementation in (moto_patches._transact_write_items, moto_patches.ORIGINALS["transact_write_items"]):
        fresh_table(client)
        for key, value in existing.items():
            client.put_item(TableName=TABLE, Item={"PK": {"S": key}, "SK": {"S": "s"}, "v": {"N": str(value)}})
        DynamoDBBackend.transact_write_items = implementation  # type: ignore[method-assign]
        try:
            results.append(outcome_of(client, items))
        finally:
            DynamoDBBackend.transact_write_items = moto_patches._transact_write_items  # type: ignore[method-assign]
    assert results[0] == results[1]


def test_speed_patches_stay_off_on_another_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    import moto

    monkeypatch.setattr(moto, "__version__", "9.9.9")
    with pytest.warns(RuntimeWarning, match="speed patches are off"):
        assert moto_patches.speed_patches_enabled() is False
    monkeypatch.setattr(moto, "__version__", moto_patches.SPEED_PATCHES_MOTO)
    monkeypatch.setenv("LOCAL_MOTO_SPEED", "0")
    assert moto_patches.speed_patches_enabled() is False
    monkeypatch.delenv("LOCAL_MOTO_SPEED")
    assert moto_patches.speed_patches_enabled() is True


# Item responses rendered with json.dumps instead of moto's shape-walking serializer ------------
def answers(client: Any, calls: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    found = []
    for operation, kwargs in calls:
        response = getattr(client, operation)(**kwargs)
        response.pop("ResponseMetadata", None)
        found.append(canonical(response))
    return found


@contextmanager
def moto_s_own(owner: Any, name: str, original: str, originals: dict[str, Any] | None = None) -> Iterator[None]:
    """moto's own ``owner.name`` (``originals[original]``, moto_patches' by default) in place of
    the patch, for a while."""
    fast = getattr(owner, name)
    setattr(owner, name, (moto_patches.ORIGINALS if originals is None else originals)[original])
    try:
        yield
    finally:
        setattr(owner, name, fast)


def moto_s_own_serializer() -> Any:
    from moto.core.responses import ActionResult

    return moto_s_own(ActionResult, "execute_result", "execute_result")


def seeded(client: Any, attrs: dict[str, Any]) -> dict[str, Any]:
    fresh_table(client)
    item = {"PK": {"S": "p1"}, "SK": {"S": "a"}, "G": {"S": "g1"}, "GN": {"N": "1"}, **attrs}
    client.put_item(TableName=TABLE, Item=item)
    client.put_item(TableName=TABLE, Item={"PK": {"S": "p1"}, "SK": {"S": "b"}, "G": {"S": "g1"}, "GN": {"N": "2"}})
    return {"PK": item["PK"], "SK": item["SK"]}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(attribute_maps)
def test_item_responses_are_moto_s(client: Any, attrs: dict[str, Any]) -> None:
    key = seeded(client, attrs)
    reads = [
        ("get_item", {"TableName": TABLE, "Key": key}),
        ("get_item", {"TableName": TABLE, "Key": {"PK": {"S": "p9"}, "SK": {"S": "a"}}}),
        (
            "query",
            {
                "TableName": TABLE,
                "KeyConditionExpression": "PK = :p",
                "ExpressionAttributeValues": {":p": {"S": "p1"}},
                "Limit": 1,
            },
        ),
        (
            "query",
            {
                "TableName": TABLE,
                "IndexName": "ByGKeys",
                "KeyConditionExpression": "G = :g",
                "ExpressionAttributeValues": {":g": {"S": "g1"}},
                "Select": "COUNT",
            },
        ),
        ("scan", {"TableName": TABLE, "ReturnConsumedCapacity": "TOTAL"}),
        ("batch_get_item", {"RequestItems": {TABLE: {"Keys": [key, {"PK": {"S": "p9"}, "SK": {"S": "z"}}]}}}),
        ("transact_get_items", {"TransactItems": [{"Get": {"TableName": TABLE, "Key": key}}]}),
    ]
    fast = answers(client, reads)
    with moto_s_own_serializer():
        assert answers(client, reads) == fast
    writes = [
        ("put_item", {"TableName": TABLE, "Item": {**key, "x": {"N": "1"}}, "ReturnValues": "ALL_OLD"}),
        (
            "update_item",
            {
                "TableName": TABLE,
                "Key": key,
                "UpdateExpression": "SET y = :y",
                "ExpressionAttributeValues": {":y": {"S": "v"}},
                "ReturnValues": "ALL_NEW",
            },
        ),
        ("delete_item", {"TableName": TABLE, "Key": key, "ReturnValues": "ALL_OLD"}),
        ("batch_write_item", {"RequestItems": {TABLE: [{"PutRequest": {"Item": {**key, "z": {"BOOL": True}}}}]}}),
    ]
    seeded(client, attrs)
    fast = answers(client, writes)
    seeded(client, attrs)
    with moto_s_own_serializer():
        assert answers(client, writes) == fast


# The server's backend per Host header, remembered -----------------------------------------------------
@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1:4566",
        "localhost:5000",
        "dynamodb.us-east-1.amazonaws.com",
        "states.us-east-1.amazonaws.com",
        "s3.amazonaws.com",
        "bucket.s3.us-east-1.amazonaws.com",
        "secretsmanager.eu-west-1.amazonaws.com",
        "dynamodb",
        "moto_api",
        None,
    ],
)
def test_the_backend_for_a_host_is_moto_s_every_time(host: str | None) -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    app = DomainDispatcherApplication(create_backend_app)
    expected = moto_patches.ORIGINALS["get_backend_for_host"](app, host)
    assert app.get_backend_for_host(host) == expected
    assert app.get_backend_for_host(host) == expected  # from the cache


# Attribute values in requests taken as their JSON is ----------------------------------------------------
def moto_s_own_parser() -> Any:
    from moto.core.parse import BaseJSONParser

    return moto_s_own(BaseJSONParser, "_parse_structure", "parse_structure")


def on_the_wire(value: Any) -> Any:
    """DynamoDB JSON as a client sends it: binaries as base64 text."""
    import base64

    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: on_the_wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [on_the_wire(v) for v in value]
    return value


def parsed_request(operation: str, body: dict[str, Any]) -> Any:
    import json

    from moto.core.parse import JSONParser
    from moto.core.utils import get_service_model

    model = get_service_model("dynamodb").operation_model(operation)
    body_bytes = json.dumps(on_the_wire(body)).encode()
    request = {"body": body_bytes, "headers": {}, "query_string": {}, "url_path": "/", "method": "POST"}
    return JSONParser(model).parse(request)  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(attribute_maps)
def test_item_requests_are_parsed_as_moto_parses_them(attrs: dict[str, Any]) -> None:
    item = {"PK": {"S": "p1"}, "SK": {"S": "a"}, **attrs}
    bodies = [
        ("PutItem", {"TableName": TABLE, "Item": item}),
        ("BatchWriteItem", {"RequestItems": {TABLE: [{"PutRequest": {"Item": item}}]}}),
        ("Query", {"TableName": TABLE, "ExpressionAttributeValues": {f":{k}": v for k, v in attrs.items()}}),
    ]
    for operation, body in bodies:
        fast = parsed_request(operation, body)
        with moto_s_own_parser():
            assert parsed_request(operation, body) == fast


# An account's backend, looked up -------------------------------------------------------------------------
def test_an_account_s_backend_is_moto_s_and_is_reset_with_the_others() -> None:
    from moto.core.base_backend import BackendDict
    from moto.dynamodb.models import DynamoDBBackend

    backends: Any = BackendDict(DynamoDBBackend, "dynamodb")  # a dict of its own: no global reset
    try:
        backend = backends["111122223333"]
        assert backends["111122223333"] is backend  # looked up, not made again
        assert moto_patches.ORIGINALS["backend_dict_getitem"](backends, "111122223333") is backend
        assert backends in BackendDict._instances  # registered for moto's reset
        backends.clear()  # what moto's reset does to every registered dict...
        BackendDict._instances.remove(backends)  # ...and to the register
        fresh = backends["111122223333"]
        assert fresh is not backend
        assert backends in BackendDict._instances  # registered again
    finally:
        if backends in BackendDict._instances:
            BackendDict._instances.remove(backends)


# Copies and renderings in one walk -------------------------------------------------------------------
wire_binaries = st.builds(lambda b: {"B": __import__("base64").b64encode(b).decode()}, st.binary(max_size=8))
held_values = st.recursive(
    st.one_of(scalars, wire_binaries),  # a binary is held as bytes, or as the wire's base64 text
    lambda inner: st.one_of(
        st.builds(lambda xs: {"L": xs}, st.lists(inner, max_size=4)),
        st.builds(lambda m: {"M": m}, st.dictionaries(names, inner, max_size=4)),
    ),
    max_leaves=12,
)
held_items = st.dictionaries(names, held_values, max_size=6)


def shape(node: Any) -> Any:
    """Everything a copy must reproduce: classes, types, values, nesting."""
    if isinstance(node, Item):
        return ("Item", type(node.attrs).__name__, shape(node.hash_key), shape(node.range_key), shape(dict(node.attrs)))
    if isinstance(node, DynamoType):
        return ("DynamoType", node.type, shape(node.value))
    if isinstance(node, dict):
        return ("dict", tuple((k, shape(v)) for k, v in node.items()))
    if isinstance(node, list):
        return ("list", tuple(shape(v) for v in node))
    return (type(node).__name__, node)


def containers(node: Any) -> set[int]:
    """The ids of every mutable node of an item (what a copy must not share with it)."""
    found: set[int] = set()

    def walk(value: Any) -> None:
        if isinstance(value, Item):
            found.update({id(value), id(value.attrs)})
            for part in (value.hash_key, value.range_key, *value.attrs.values()):
                walk(part)
        elif isinstance(value, DynamoType):
            found.add(id(value))
            walk(value.value)
        elif isinstance(value, dict):
            found.add(id(value))
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            found.add(id(value))
            for v in value:
                walk(v)

    walk(node)
    return found


def moto_s_copies_and_renderings() -> Any:
    from contextlib import ExitStack

    from moto.dynamodb import responses
    from moto.dynamodb.models import utilities

    stack = ExitStack()
    for owner, name, original in (
        (DynamoType, "__deepcopy__", "type_deepcopy"),
        (Item, "__deepcopy__", "item_deepcopy"),
        (Item, "to_json", "item_to_json"),
        (utilities, "dynamo_to_dict", "dynamo_to_dict"),
        (responses, "dynamo_to_dict", "dynamo_to_dict"),
    ):
        stack.enter_context(moto_s_own(owner, name, original, ORIGINALS))
    return stack


@given(held_items)
def test_item_copies_are_moto_s_and_share_nothing_with_the_item(attrs: dict[str, Any]) -> None:
    import copy

    item = original_item(attrs)
    item.range_key = DynamoType({"N": "7"})
    fast = copy.deepcopy(item)
    with moto_s_copies_and_renderings():
        moto_s = copy.deepcopy(item)
    assert shape(fast) == shape(moto_s) == shape(item)
    assert not containers(fast) & containers(item)
    for value in item.attrs.values():  # and each attribute on its own (projections copy them so)
        assert shape(copy.deepcopy(value)) == shape(value)
        assert not containers(copy.deepcopy(value)) & containers(value)


@given(held_items)
def test_item_renderings_are_moto_s(attrs: dict[str, Any]) -> None:
    from moto.dynamodb.models import utilities

    item = original_item(attrs)
    fast_json, fast_dict = item.to_json(), utilities.dynamo_to_dict({"Items": [item.attrs], "Count": 1})
    with moto_s_copies_and_renderings():
        assert item.to_json() == fast_json
        assert utilities.dynamo_to_dict({"Items": [item.attrs], "Count": 1}) == fast_dict
    assert not containers(fast_json) & containers(item)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(attribute_maps)
def test_reads_and_stream_records_are_moto_s_with_every_copy_and_rendering(client: Any, attrs: dict[str, Any]) -> None:
    from moto.dynamodb.models import dynamodb_backends

    def stream_images() -> list[Any]:
        table = dynamodb_backends["123456789012"]["us-east-1"].get_table(TABLE)
        # (the time, and the size moto estimates from a dump that holds it, vary)
        return [
            canonical(
                {k: v for k, v in r.record["dynamodb"].items() if k not in {"ApproximateCreationDateTime", "SizeBytes"}}
            )
            for r in table.stream_shard.items
        ]

    def session() -> tuple[list[dict[str, Any]], list[Any]]:
        key = seeded(client, attrs)
        client.update_table(
            TableName=TABLE, StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
        )
        client.put_item(TableName=TABLE, Item={**key, **attrs, "v": {"N": "1"}})
        client.update_item(
            TableName=TABLE,
            Key=key,
            UpdateExpression="SET v = v + :one, w = :m",
            ExpressionAttributeValues={":one": {"N": "1"}, ":m": {"M": {"a": {"L": [{"S": "x"}]}}}},
        )
        reads = [
            ("get_item", {"TableName": TABLE, "Key": key}),
            (
                "query",
                {
                    "TableName": TABLE,
                    "IndexName": "ByG",
                    "KeyConditionExpression": "G = :g",
                    "ExpressionAttributeValues": {":g": {"S": "g1"}},
                },
            ),
            (
                "query",
                {
                    "TableName": TABLE,
                    "KeyConditionExpression": "PK = :p",
                    "ExpressionAttributeValues": {":p": {"S": "p1"}},
                    "ProjectionExpression": "SK, v",
                },
            ),
            ("scan", {"TableName": TABLE}),
            ("batch_get_item", {"RequestItems": {TABLE: {"Keys": [key]}}}),
        ]
        return answers(client, reads), stream_images()

    fast = session()
    with moto_s_copies_and_renderings():
        assert session() == fast
