"""Writes serialize items in one pass, as boto3 did. Reads hand their items over as the
wire's JSON (``aws.raw_items``), skipping botocore's walk of every attribute value, and
``deserialize`` turns them into the same Python values as botocore's parsing would: every
DynamoDB type, binaries included (base64 on the wire). The rest of a response (a page's
LastEvaluatedKey, unprocessed keys) and every error are botocore's."""

from __future__ import annotations

import base64
import zlib
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeSerializer
from botocore.awsrequest import AWSResponse
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from orchestrator import aws
from orchestrator.errors import DatastoreUnavailable
from orchestrator.store.table import Table, _to_dynamo, deserialize, serialize

ITEM: dict[str, Any] = {
    "PK": "P",
    "SK": "S#1",
    "text": "é ✓",
    "count": 7,
    "big": 12345678901234567890,
    "ratio": 1.5,
    "whole_float": 2.0,
    "negative": -3,
    "flag": True,
    "off": False,
    "blob": b"\x00\xffbinary",
    "nested": {"list": [1, "two", None, {"deep": [b"\x01", 0.25]}], "empty": {}},
    "names": {"a", "b"},
    "numbers": {1, 2},
    "blobs": {b"\x01", b"\x02"},
}


@pytest.fixture
def client() -> Iterator[Any]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "PK", "AttributeType": "S"},
                {"AttributeName": "SK", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield dynamodb


def expected() -> dict[str, Any]:
    """ITEM as a read returns it: sets are lists, an integral number is an int."""
    value = dict(ITEM, names=sorted(ITEM["names"]), numbers=sorted(ITEM["numbers"]), blobs=sorted(ITEM["blobs"]))
    value["whole_float"] = 2
    return value


def normalized(item: dict[str, Any] | None) -> dict[str, Any]:
    assert item is not None
    return {k: sorted(v) if k in ("names", "numbers", "blobs") else v for k, v in item.items()}


def test_every_read_returns_the_same_values_as_botocores_parsing(client: Any) -> None:
    table = Table("t", client)
    table.put(ITEM)
    key = {"PK": "P", "SK": "S#1"}
    assert normalized(table.get(key)) == expected()
    assert [normalized(i) for i in table.query_all(index=None, key_condition="PK = :p", values={":p": "P"})] == [
        expected()
    ]
    assert [normalized(i) for i in table.batch_get([key])] == [expected()]
    plain = boto3.client("dynamodb", region_name="us-east-1")  # no hook: botocore parses the item
    parsed = plain.get_item(TableName="t", Key=serialize(key))["Item"]
    assert normalized(deserialize(parsed)) == expected()


def test_the_items_arrive_unparsed_and_a_binary_as_its_base64_text(client: Any) -> None:
    Table("t", client).put(ITEM)
    raw = client.get_item(TableName="t", Key=serialize({"PK": "P", "SK": "S#1"}))["Item"]
    assert raw["blob"] == {"B": base64.b64encode(b"\x00\xffbinary").decode()}  # botocore would give bytes
    assert raw["count"] == {"N": "7"}


def test_a_page_key_is_parsed_by_botocore_and_pages_follow_each_other(client: Any) -> None:
    table = Table("t", client)
    for n in range(5):
        table.put({"PK": "P", "SK": f"S#{n}", "n": n})
    response = client.query(
        TableName="t", KeyConditionExpression="PK = :p", ExpressionAttributeValues={":p": {"S": "P"}}, Limit=2
    )
    assert len(response["Items"]) == 2
    assert response["LastEvaluatedKey"] == {"PK": {"S": "P"}, "SK": {"S": "S#1"}}
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert response["Count"] == 2


def test_errors_are_parsed_as_before(client: Any) -> None:
    with pytest.raises(DatastoreUnavailable):  # ResourceNotFoundException: an outage, as before
        Table("missing", client).get({"PK": "P", "SK": "S"})
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.query(
            TableName="missing", KeyConditionExpression="PK = :p", ExpressionAttributeValues={":p": {"S": "P"}}
        )


def test_an_unknown_attribute_type_is_refused() -> None:
    with pytest.raises(TypeError):
        deserialize({"x": {"Z": "?"}})


# Writes: the one-pass serializer writes what boto3's TypeSerializer wrote ---------------------------
def boto3_serialize(item: dict[str, Any]) -> dict[str, Any]:
    """What ``serialize`` was: boto3's serializer after floats became Decimals."""
    serializer = TypeSerializer()
    return {k: serializer.serialize(_to_dynamo(v)) for k, v in item.items() if v is not None}


leaves = st.one_of(
    st.text(max_size=8),
    st.integers(-(10**40), 10**40),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.binary(max_size=4),
    st.sets(st.text(min_size=1, max_size=3), min_size=1, max_size=3),
    st.sets(st.integers(0, 99), min_size=1, max_size=3),
)
documents = st.recursive(
    leaves,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.tuples(inner), st.dictionaries(st.text(max_size=3), inner)),
    max_leaves=10,
)


def outcome(serializer: Any, item: dict[str, Any]) -> Any:
    try:
        return serializer(item)
    except Exception as error:  # the refusal is part of what is compared
        return type(error)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=3), documents, max_size=5))
def test_items_are_written_as_boto3_wrote_them(item: dict[str, Any]) -> None:
    assert outcome(serialize, item) == outcome(boto3_serialize, item)


def test_a_batch_write_sends_every_item_as_given(client: Any) -> None:
    table = Table("t", client)
    items = [dict(ITEM, SK=f"S#{n}", n=n) for n in range(60)]  # three requests
    assert table.batch_put(items) == 3
    plain = boto3.client("dynamodb", region_name="us-east-1")  # no hook: botocore parses the items
    stored = plain.scan(TableName="t")["Items"]
    assert sorted((normalized(deserialize(i)) for i in stored), key=lambda i: i["n"]) == [
        dict(expected(), SK=f"S#{n}", n=n) for n in range(60)
    ]


def test_a_batch_write_refused_by_dynamodb_is_botocores_error(client: Any) -> None:
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.batch_write_item(RequestItems={"missing": [{"PutRequest": {"Item": serialize({"PK": "P", "SK": "S"})}}]})


def test_a_damaged_response_is_retried_as_botocore_retries_it() -> None:
    """A body that is not JSON (cut short: its CRC32 does not match) is left to botocore,
    whose DynamoDB checksum check sends the request again."""
    good = b'{"Count":1,"Items":[{"PK":{"S":"P"}}],"ScannedCount":1}'
    client = aws.raw_items(
        boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    )
    attempts = []

    class Body:
        def __init__(self, data: bytes) -> None:
            self.data = data

        def stream(self, **_: Any) -> Iterator[bytes]:
            yield self.data

    def send(request: Any, **_: Any) -> AWSResponse:
        attempts.append(request)
        body = good[:30] if len(attempts) == 1 else good
        return AWSResponse(request.url, 200, {"x-amz-crc32": str(zlib.crc32(good))}, Body(body))

    client.meta.events.register("before-send.dynamodb", send)
    response = client.query(
        TableName="t", KeyConditionExpression="PK = :p", ExpressionAttributeValues={":p": {"S": "P"}}
    )
    assert len(attempts) == 2
    assert response["Items"] == [{"PK": {"S": "P"}}]
