"""Telemetry batches (SPEC §19) and where their lines go: the stored line, packing for the
delivery stream, and the template's partitioning agreeing with the readers' key schema."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from orchestrator.domain import telemetry
from orchestrator.domain.telemetry import Kind, Origin
from orchestrator.errors import IngestBatchMalformed, IngestBodyTooLarge
from orchestrator.store import keys
from orchestrator_local import firehose
from orchestrator_local.template import Template

AT = datetime(2026, 12, 2, 7, 5, 9, 123000, tzinfo=UTC)
ORIGIN = Origin(Kind.LOGS, "0190b5e4-6f1a-7cc2-8d3e-2b9f3a1c4d5e", "0190b5e4-0000-7000-8000-000000000001", AT)


def stream_destination() -> dict[str, Any]:
    stream = Template().resources_of("AWS::KinesisFirehose::DeliveryStream")["TelemetryStream"]
    destination: dict[str, Any] = stream["Properties"]["ExtendedS3DestinationConfiguration"]
    return destination


def test_a_stored_line_is_the_record_as_sent_with_where_it_belongs() -> None:
    record = {"timestamp": "2025-01-15T10:30:00.123456789Z", "message": "é \u2028 <ok>", "extra": [1, None]}
    [line] = telemetry.stored_lines(ORIGIN, [record])
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == {
        "kind": "logs",
        "project": ORIGIN.project_id,
        "node": ORIGIN.node_id,
        "received_at": "2026-12-02T07:05:09.123Z",
        "record": record,
    }


def test_the_templates_partitioning_puts_a_line_where_readers_look_for_it() -> None:
    # Given the template's own stream configuration, evaluated as local mode (and AWS) does
    lines = list(telemetry.stored_lines(ORIGIN, [{"timestamp": "2026-12-02T07:05:00Z", "message": "m"}] * 3))
    objects = firehose.partitioned(stream_destination(), telemetry.stream_records(lines), AT)
    # Then every line lands under the node's prefix of its arrival hour, delimited by newlines
    expected = keys.telemetry_node_prefix("logs", ORIGIN.project_id, ORIGIN.node_id, "2026-12-02", 7)
    assert objects == {expected: b"".join(lines)}


def test_the_glue_tables_project_the_same_hour_prefixes() -> None:
    tables = Template().resources_of("AWS::Glue::Table")
    for kind in Kind:
        table = tables[f"Telemetry{kind.value.capitalize()}Table"]["Properties"]["TableInput"]
        template = table["Parameters"]["storage.location.template"]["Fn::Sub"]
        location = template.replace("s3://${TelemetryBucket}/", "").replace("${!", "{")
        assert location.format(project="p", date="2026-12-02", hour="07") == keys.telemetry_hour_prefix(
            kind.value, "p", "2026-12-02", 7
        )
        assert [k["Name"] for k in table["PartitionKeys"]] == ["project", "date", "hour"]
        assert "project" not in [c["Name"] for c in table["StorageDescriptor"]["Columns"]]


def test_lines_are_packed_into_stream_records_under_the_record_limit() -> None:
    lines = [b"x" * 300 + b"\n"] * 10
    records = telemetry.stream_records(lines, limit=1000)
    assert [len(r) for r in records] == [903, 903, 903, 301]
    assert b"".join(records) == b"".join(lines)


def test_stream_calls_respect_put_record_batchs_count_and_size_limits() -> None:
    small = [b"a"] * 1_201
    assert [len(call) for call in telemetry.stream_calls(small)] == [500, 500, 201]
    big = [b"b" * 1_000_000] * 9
    assert [len(call) for call in telemetry.stream_calls(big)] == [4, 4, 1]


def test_a_batch_of_the_caps_size_fits_the_stream_in_few_calls() -> None:
    record = {"timestamp": "2026-12-02T07:05:00Z", "message": "y" * 800}
    lines = list(telemetry.stored_lines(ORIGIN, [record] * telemetry.MAX_RECORDS))
    records = telemetry.stream_records(lines)
    assert all(len(r) <= telemetry.STREAM_RECORD_BYTES for r in records)
    assert len(telemetry.stream_calls(records)) == 3


@pytest.mark.parametrize("media", ["application/json", "application/json; charset=utf-8", None])
def test_a_json_array_is_a_batch(media: str | None) -> None:
    body = b'[{"timestamp":"2025-01-15T10:30:00.123456789+02:00","message":"m","severity":"info"}]'
    assert telemetry.records_of(Kind.LOGS, body, media)[0]["severity"] == "info"


def test_ndjson_skips_blank_lines_and_names_a_bad_one() -> None:
    body = b'{"timestamp":"2025-01-15T10:30:00Z","group":"g"}\n\n{"timestamp":"2025-01-15T10:30:01Z","group":"h"}\n'
    assert len(telemetry.records_of(Kind.METRICS, body, "application/x-ndjson")) == 2
    with pytest.raises(IngestBatchMalformed) as refused:
        telemetry.records_of(Kind.METRICS, body + b"[1,\n", "application/x-ndjson")
    assert refused.value.extensions["errors"][0]["field"] == "line 4"


@pytest.mark.parametrize("literal", [b"1e999", b"-1e999", b"NaN", b"Infinity"])
def test_numbers_json_cannot_carry_are_refused(literal: bytes) -> None:
    body = b'[{"timestamp":"2025-01-15T10:30:00Z","group":"g","data":' + literal + b"}]"
    with pytest.raises(IngestBatchMalformed):
        telemetry.records_of(Kind.METRICS, body, None)


def test_a_record_over_the_per_record_cap_is_malformed_and_a_batch_over_the_count_too_large() -> None:
    huge = json.dumps([{"timestamp": "2025-01-15T10:30:00Z", "message": "z" * (300 * 1024)}]).encode()
    with pytest.raises(IngestBatchMalformed):
        telemetry.records_of(Kind.LOGS, huge, None)
    many = json.dumps([{"timestamp": "2025-01-15T10:30:00Z", "message": ""}] * 10_001).encode()
    with pytest.raises(IngestBodyTooLarge) as refused:
        telemetry.records_of(Kind.LOGS, many, None)
    assert refused.value.extensions["dimension"] == "records"


def test_errors_name_at_most_twenty_records() -> None:
    body = json.dumps([{"message": "no timestamp"}] * 50).encode()
    with pytest.raises(IngestBatchMalformed) as refused:
        telemetry.records_of(Kind.LOGS, body, None)
    assert len(refused.value.extensions["errors"]) == telemetry.ERRORS_SHOWN


@pytest.mark.parametrize(
    "query",
    [
        ".node",
        "{node: .node | ascii_downcase}",
        "{node: .a.b}",
        "{node: .node, kind: (.kind)}",
    ],
)
def test_local_mode_refuses_a_query_outside_the_jq_subset_it_evaluates(query: str) -> None:
    with pytest.raises(ValueError):
        firehose.check_query(query)


def test_a_missing_field_partitions_as_null_as_jq_does() -> None:
    entries = firehose.check_query("{node: .node, date: .received_at[0:10]}")
    assert firehose.extract(entries, {"received_at": "2026-12-02T07:00:00Z"}) == {"node": "null", "date": "2026-12-02"}


def test_the_budget_minute_and_retry_after() -> None:
    assert telemetry.budget_minute(AT) == "2026-12-02T07:05"
    assert telemetry.seconds_to_next_minute(AT) == 51
    assert telemetry.seconds_to_next_minute(AT.replace(second=0)) == 60


def test_ndjson_stops_at_the_record_cap_without_parsing_the_rest() -> None:
    # 10,000 records, then a line that is not JSON: refused for its count before that line
    # is parsed (a body of millions of tiny lines is never parsed whole)
    body = b'{"timestamp":"2025-01-15T10:30:00Z","group":"g"}\n' * telemetry.MAX_RECORDS + b"{not json\n"
    with pytest.raises(IngestBodyTooLarge) as refused:
        telemetry.records_of(Kind.METRICS, body, "application/x-ndjson")
    assert refused.value.extensions["dimension"] == "records"


@pytest.mark.parametrize("moment", ["9999-99-99T99:99:99Z", "2025-02-30T10:00:00Z", "2025-01-15T24:00:00Z"])
def test_a_time_that_does_not_exist_is_malformed(moment: str) -> None:
    with pytest.raises(IngestBatchMalformed) as refused:
        telemetry.records_of(Kind.LOGS, json.dumps([{"timestamp": moment, "message": "m"}]).encode(), None)
    assert refused.value.extensions["errors"][0]["field"] == "0.timestamp"


@pytest.mark.parametrize(
    "moment", ["2025-01-15T10:30:00.123456789Z", "0001-01-01T00:00:00Z", "2025-01-15T10:30:00.5-05:30"]
)
def test_go_times_are_accepted_to_the_nanosecond_with_any_offset(moment: str) -> None:
    assert telemetry.records_of(Kind.LOGS, json.dumps([{"timestamp": moment, "message": "m"}]).encode(), None)
