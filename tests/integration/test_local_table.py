"""Local mode's table is the template's: every index (GSI5, the event relay's, included) with its
keys and projection, and the functions' environment carries the event index's shard count."""

from __future__ import annotations

import boto3
from moto import mock_aws

from orchestrator_local.resources import REGION, deploy
from orchestrator_local.template import Template


def test_the_local_table_has_every_index_of_the_template_with_its_keys_and_projection(template: Template) -> None:
    declared = template.resources["Table"]["Properties"]["GlobalSecondaryIndexes"]
    with mock_aws():
        stack = deploy(template, prefix="table")
        table = boto3.client("dynamodb", region_name=REGION).describe_table(TableName=stack.refs["Table"])["Table"]
    created = {i["IndexName"]: (i["KeySchema"], i["Projection"]) for i in table["GlobalSecondaryIndexes"]}
    assert created == {i["IndexName"]: (i["KeySchema"], i["Projection"]) for i in declared}
    assert created["GSI5"] == (
        [{"AttributeName": "GSI5PK", "KeyType": "HASH"}, {"AttributeName": "GSI5SK", "KeyType": "RANGE"}],
        {"ProjectionType": "ALL"},
    )


def test_the_event_index_shard_count_is_the_parameters(template: Template) -> None:
    with mock_aws():
        assert deploy(template, prefix="shards").environment()["EVENT_INDEX_SHARDS"] == "8"
    with mock_aws():
        given = deploy(template, prefix="shards", parameters={"EventIndexShards": "16"})
        assert given.environment()["EVENT_INDEX_SHARDS"] == "16"
