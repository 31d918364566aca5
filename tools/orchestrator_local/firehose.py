"""Firehose dynamic partitioning for moto, which delivers a stream's records as they come.

moto's Firehose writes each ``PutRecordBatch`` to S3 as one object under the destination's
``Prefix`` taken literally: no ``!{partitionKeyFromQuery:…}`` expansion, no processors, no
compression. The template's ``TelemetryStream`` relies on what AWS does with an extended S3
destination whose dynamic partitioning is enabled, so local mode does that part here:

1. ``RecordDeAggregation`` (``SubRecordType`` ``JSON``): each record is split into the JSON
   objects it holds, one after another;
2. ``MetadataExtraction``: the ``MetadataExtractionQuery`` is evaluated on each object. Local
   mode evaluates the jq subset the template uses, an object of ``.field`` or
   ``.field[start:end]`` (string slices); any other query is refused when the stream is
   created (:func:`check_query`), so the template cannot drift into something only AWS runs;
3. the prefix's ``!{partitionKeyFromQuery:name}`` (and ``!{timestamp:…}``) are expanded;
4. ``AppendDelimiterToRecord`` appends the delimiter (``\\n``) to each object;
5. each partition's objects are written as one S3 object (gzipped for ``CompressionFormat``
   ``GZIP``, with AWS's ``.gz`` suffix), named as Firehose names its objects.

Delivery is immediate (moto's behaviour, no buffering): a partition gets one object per
``PutRecordBatch`` where AWS would write one per buffer interval. Readers list and read
objects in name order either way.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import defaultdict
from datetime import datetime
from typing import Any

from orchestrator.clock import SystemClock

_FIELD = r"\.([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d*):(\d*)\])?"
_ENTRY = re.compile(rf"\s*([A-Za-z_][A-Za-z0-9_]*)\s*:\s*{_FIELD}\s*")
_PARTITION_KEY = re.compile(r"!\{partitionKeyFromQuery:([A-Za-z_][A-Za-z0-9_]*)\}")
_TIMESTAMP = re.compile(r"!\{timestamp:([^}]+)\}")
_installed = False

Extractor = list[tuple[str, str, int | None, int | None]]


def check_query(query: str) -> Extractor:
    """The jq object ``query`` as (key, field, slice start, slice end) entries; ``ValueError``
    for anything outside the subset local mode evaluates."""
    text = query.strip()
    if not (text.startswith("{") and text.endswith("}")):
        raise ValueError(f"local mode evaluates jq objects of fields only, not {query!r}")
    entries: Extractor = []
    for part in text[1:-1].split(","):
        match = _ENTRY.fullmatch(part)
        if match is None:
            raise ValueError(f"local mode cannot evaluate {part.strip()!r} of the query {query!r}")
        key, field, start, end = match.groups()
        entries.append((key, field, int(start) if start else None, int(end) if end else None))
    return entries


def extract(entries: Extractor, document: Any) -> dict[str, str]:
    """The partition keys of one JSON object (jq: a missing field is ``null``)."""
    keys: dict[str, str] = {}
    for key, field, start, end in entries:
        value = document.get(field) if isinstance(document, dict) else None
        if value is not None and (start is not None or end is not None):
            value = str(value)[start:end]
        keys[key] = "null" if value is None else str(value)
    return keys


def json_objects(data: bytes) -> list[tuple[Any, bytes]]:
    """The JSON values ``data`` holds one after another, each with its bytes as sent
    (``RecordDeAggregation``, ``JSON``)."""
    text = data.decode("utf-8")
    decoder = json.JSONDecoder()
    values: list[tuple[Any, bytes]] = []
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position >= len(text):
            return values
        value, end = decoder.raw_decode(text, position)
        values.append((value, text[position:end].encode()))
        position = end


def _parameters(processors: list[dict[str, Any]], kind: str) -> dict[str, str] | None:
    for processor in processors:
        if processor.get("Type") == kind:
            return {p["ParameterName"]: p["ParameterValue"] for p in processor.get("Parameters", [])}
    return None


def _expand(prefix: str, keys: dict[str, str], now: datetime) -> str:
    prefix = _PARTITION_KEY.sub(lambda m: keys[m.group(1)], prefix)
    java = {"yyyy": "%Y", "MM": "%m", "dd": "%d", "HH": "%H", "mm": "%M", "ss": "%S"}

    def timestamp(match: re.Match[str]) -> str:
        pattern = re.sub("yyyy|MM|dd|HH|mm|ss", lambda m: java[m.group(0)], match.group(1))
        return now.strftime(pattern)

    return _TIMESTAMP.sub(timestamp, prefix)


def partitioned(destination: dict[str, Any], records: list[bytes], now: datetime) -> dict[str, bytes]:
    """What AWS writes for ``records`` (one PutRecordBatch): object contents by prefix."""
    processing = destination.get("ProcessingConfiguration") or {}
    processors = processing.get("Processors", []) if processing.get("Enabled") else []
    deaggregation = _parameters(processors, "RecordDeAggregation")
    extraction = _parameters(processors, "MetadataExtraction")
    delimiter_parameters = _parameters(processors, "AppendDelimiterToRecord")
    delimiter = b""
    if delimiter_parameters is not None:
        delimiter = delimiter_parameters.get("Delimiter", "\\n").encode().decode("unicode_escape").encode()
    entries = check_query(extraction["MetadataExtractionQuery"]) if extraction else []
    objects: dict[str, bytearray] = defaultdict(bytearray)
    for record in records:
        if deaggregation is not None and deaggregation.get("SubRecordType", "JSON") == "JSON":
            parts = json_objects(record)
        else:
            parts = [(json.loads(record) if entries else None, record)]
        for document, part in parts:
            keys = extract(entries, document) if entries else {}
            objects[_expand(destination.get("Prefix", ""), keys, now)] += part + delimiter
    return {prefix: bytes(content) for prefix, content in objects.items()}


def install() -> None:
    """Make moto's Firehose partition extended S3 destinations whose dynamic partitioning is
    enabled (other destinations keep moto's behaviour)."""
    global _installed  # noqa: PLW0603 - patched once per process
    if _installed:
        return
    from moto.firehose.models import FirehoseBackend
    from moto.moto_api._internal import mock_random
    from moto.s3.models import s3_backends

    original = FirehoseBackend.put_s3_records

    def put_s3_records(
        self: Any,
        delivery_stream_name: str,
        version_id: str,
        s3_destination: dict[str, Any],
        records: list[dict[str, bytes]],
    ) -> list[dict[str, str]]:
        dynamic = (s3_destination.get("DynamicPartitioningConfiguration") or {}).get("Enabled")
        if not dynamic:
            return original(self, delivery_stream_name, version_id, s3_destination, records)
        # The control plane's clock, as in AWS the stream and the ingest Lambda share time:
        # an object's name is at or after its oldest line's received_at.
        now = SystemClock().now()
        bucket = s3_destination["BucketARN"].split(":")[-1]
        gzipped = s3_destination.get("CompressionFormat") == "GZIP"
        s3 = s3_backends[self.account_id][self.partition]
        for prefix, content in partitioned(s3_destination, [r["Data"] for r in records], now).items():
            name = (
                f"{prefix}{delivery_stream_name}-{version_id}-{now.strftime('%Y-%m-%d-%H-%M-%S')}-{mock_random.uuid4()}"
            )
            body = gzip.compress(content, mtime=0) if gzipped else content
            s3.put_object(bucket, name + (".gz" if gzipped else ""), body)
        return [{"RecordId": str(mock_random.uuid4())} for _ in records]

    FirehoseBackend.put_s3_records = put_s3_records  # type: ignore[method-assign]
    _installed = True
