"""Local mode's moto speed fixes give moto's own answers (differential tests against ``ORIGINALS``)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
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


@given(values)
def test_a_copied_value_is_equal_and_independent(value: dict[str, Any]) -> None:
    typed = DynamoType(value)
    copied = copy.deepcopy(typed)
    assert copied.to_json() == ORIGINALS["deepcopy"](typed, {}).to_json()
    assert copied is not typed
    if typed.type == "M":
        copied.value["zz-new"] = DynamoType({"S": "x"})
        assert "zz-new" not in typed.value


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
