"""Node telemetry (SPEC §19): a batch of metrics, logs or audit records, checked whole.

The agent (plexd) posts each kind as a JSON array (``Content-Type: application/json``,
gzipped over 1 KiB); the seed documents NDJSON (``application/x-ndjson``) too. A batch is
accepted or refused whole: every record is decoded and checked before anything is kept, so
a malformed one (400 ``ingest_batch_malformed``) leaves nothing stored, and the caps
(413 ``ingest_body_too_large``) are checked on the bytes before they are parsed.

Each accepted record is kept as one line of newline-delimited JSON::

    {"kind":"logs","project":"<project>","node":"<node>","received_at":"<RFC 3339>","record":{...}}

``record`` is what the agent sent, unchanged (fields this version does not know included).
The other fields say where the line belongs: the delivery stream partitions lines into
``telemetry/<kind>/project=<p>/date=<YYYY-MM-DD>/hour=<HH>/node=<n>/`` from them (see
:mod:`orchestrator.store.keys`), and reads order and filter by ``received_at``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictStr, ValidationError

from orchestrator.clock import rfc3339
from orchestrator.errors import IngestBatchMalformed, IngestBodyTooLarge, InvalidBody

# SPEC §19's caps, per batch.
MAX_COMPRESSED_BYTES = 1_048_576
MAX_INFLATED_BYTES = 8 * 1_048_576
MAX_RECORDS = 10_000
# One record must fit a delivery-stream record (1,000 KiB) with room to spare.
MAX_RECORD_BYTES = 256 * 1024
# Firehose's limits: a record, and a PutRecordBatch call.
STREAM_RECORD_BYTES = 1_000 * 1024
STREAM_CALL_RECORDS = 500
STREAM_CALL_BYTES = 4 * 1_048_576
ERRORS_SHOWN = 20

JSON_ARRAY = "application/json"
NDJSON = "application/x-ndjson"
NDJSON_ALIASES = frozenset({NDJSON, "application/jsonlines", "application/jsonl", "application/ndjson"})

# Go's time.Time as encoding/json writes it (RFC 3339, up to nanoseconds).
GO_TIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$"


def _a_real_time(value: str) -> str:
    """A time that exists (no month 13, no 25:00), with up to nanoseconds as Go writes it."""
    head, _, rest = value.partition(".")
    fraction = "".join(c for c in rest if c.isdigit())
    zone = rest[len(fraction) :] if rest else value[19:]
    try:
        datetime.fromisoformat(head[:19] + (f".{fraction[:6]}" if fraction else "") + zone.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError("not a real date and time") from exc
    return value


GoTime = Annotated[str, Field(max_length=64, pattern=GO_TIME), AfterValidator(_a_real_time)]
Label = Annotated[StrictStr, Field(max_length=256)]


class Kind(StrEnum):
    METRICS = "metrics"
    LOGS = "logs"
    AUDIT = "audit"


class _Record(BaseModel):
    """What every record must have; anything else the agent adds is kept as sent."""

    model_config = ConfigDict(extra="allow", frozen=True)

    timestamp: GoTime


class MetricRecord(_Record):
    """plexd's ``MetricPoint``: ``data`` is any JSON value (``null`` for Go's nil)."""

    group: Annotated[StrictStr, Field(min_length=1, max_length=256)]
    peer_id: Label = ""
    data: Any = None


class LogRecord(_Record):
    """plexd's ``LogEntry``."""

    message: StrictStr
    source: Label = ""
    unit: Label = ""
    severity: Label = ""
    hostname: Label = ""


class AuditRecord(_Record):
    """plexd's ``AuditEntry``: ``subject`` and ``object`` are any JSON value."""

    event_type: Label = ""
    source: Label = ""
    action: Label = ""
    result: Label = ""
    hostname: Label = ""
    raw: StrictStr = ""
    subject: Any = None
    object: Any = None


MODELS: dict[Kind, type[_Record]] = {Kind.METRICS: MetricRecord, Kind.LOGS: LogRecord, Kind.AUDIT: AuditRecord}


def media_type(content_type: str | None) -> str:
    """The body's media type, without parameters; JSON when none is given."""
    return (content_type or JSON_ARRAY).split(";", 1)[0].strip().lower() or JSON_ARRAY


def check_compressed_size(size: int) -> None:
    if size > MAX_COMPRESSED_BYTES:
        raise IngestBodyTooLarge(
            f"The batch is {size} bytes on the wire; at most {MAX_COMPRESSED_BYTES}.",
            limit=MAX_COMPRESSED_BYTES,
            dimension="compressed_bytes",
        )


def records_of(kind: Kind, content: bytes, content_type: str | None) -> list[dict[str, Any]]:
    """The batch's records, each checked against its kind: 413 ``ingest_body_too_large``
    past ``MAX_RECORDS``; 400 ``ingest_batch_malformed`` naming the records at fault (at most
    ``ERRORS_SHOWN``) if any is not a record of ``kind``. An empty batch has no records."""
    media = media_type(content_type)
    documents = _ndjson(content) if media in NDJSON_ALIASES else _json_array(content)
    if len(documents) > MAX_RECORDS:
        raise IngestBodyTooLarge(
            f"The batch holds {len(documents)} records; at most {MAX_RECORDS}.",
            limit=MAX_RECORDS,
            dimension="records",
        )
    model = MODELS[kind]
    errors: list[dict[str, str]] = []
    for index, document in enumerate(documents):
        problem = _problem(model, document)
        if problem is not None:
            errors.append({"field": f"{index}{problem[0]}", "message": problem[1]})
            if len(errors) >= ERRORS_SHOWN:
                break
    if errors:
        raise IngestBatchMalformed(
            f"{len(errors)}{'+' if len(errors) >= ERRORS_SHOWN else ''} record(s) are not {kind.value} records;"
            " nothing of the batch was kept.",
            errors=errors,
        )
    return documents


def _problem(model: type[_Record], document: Any) -> tuple[str, str] | None:
    if not isinstance(document, dict):
        return "", "a record must be a JSON object"
    try:
        model.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "".join(f".{part}" for part in first["loc"])
        return where, str(first["msg"])
    try:
        size = len(json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode())
    except UnicodeEncodeError:
        return "", "a lone UTF-16 surrogate is not a character"
    if size > MAX_RECORD_BYTES:
        return "", f"a record is at most {MAX_RECORD_BYTES} bytes of JSON ({size})"
    return None


def _text(content: bytes) -> str:
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidBody("The body is not valid UTF-8.") from exc


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):
        raise ValueError(f"{literal[:40]} is out of range")
    return value


# JSON as the agent writes it: no ``NaN``/``Infinity``, no number a float cannot hold (Go
# never sends them, and the stored lines must stay readable by Athena). Built once.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite)


def _strict_loads(text: str) -> Any:
    return _DECODER.decode(text)


def _json_array(content: bytes) -> list[Any]:
    text = _text(content)
    if not text.strip():
        return []
    try:
        document = _strict_loads(text)
    except RecursionError as exc:
        raise IngestBatchMalformed("The batch nests too deeply.") from exc
    except ValueError as exc:
        raise IngestBatchMalformed(f"The batch is not valid JSON: {exc}.") from exc
    if document is None:  # Go's nil slice
        return []
    if not isinstance(document, list):
        raise IngestBatchMalformed(
            "The batch must be a JSON array of records (or NDJSON with Content-Type application/x-ndjson)."
        )
    return document


def _ndjson(content: bytes) -> list[Any]:
    """The lines' records, parsed one line at a time and no further than the record cap: a
    body of millions of tiny lines is refused after ``MAX_RECORDS + 1`` of them."""
    text = _text(content)
    documents: list[Any] = []
    start, number = 0, 0
    while start < len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        line, start, number = text[start:end], end + 1, number + 1
        if not line.strip():
            continue
        if len(documents) == MAX_RECORDS:
            raise IngestBodyTooLarge(
                f"The batch holds more than {MAX_RECORDS} records.", limit=MAX_RECORDS, dimension="records"
            )
        try:
            documents.append(_strict_loads(line))
        except (ValueError, RecursionError) as exc:
            raise IngestBatchMalformed(
                f"Line {number} is not a JSON record.", errors=[{"field": f"line {number}", "message": str(exc)}]
            ) from exc
    return documents


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a batch's records belong: they are partitioned and read by these."""

    kind: Kind
    project_id: str
    node_id: str
    received_at: datetime


def stored_lines(origin: Origin, records: Sequence[dict[str, Any]]) -> Iterator[bytes]:
    """Each record as its stored line (see the module docstring), newline-terminated."""
    head = json.dumps(
        {
            "kind": origin.kind.value,
            "project": origin.project_id,
            "node": origin.node_id,
            "received_at": rfc3339(origin.received_at),
        },
        separators=(",", ":"),
    )[:-1]
    for record in records:
        body = json.dumps(record, separators=(",", ":"), ensure_ascii=False)
        yield f'{head},"record":{body}}}\n'.encode()


def stream_records(lines: Sequence[bytes], limit: int = STREAM_RECORD_BYTES) -> list[bytes]:
    """Lines packed into as few delivery-stream records as fit ``limit`` bytes each (the
    stream splits them back into lines: multi-record deaggregation)."""
    records: list[bytes] = []
    current = bytearray()
    for line in lines:
        if current and len(current) + len(line) > limit:
            records.append(bytes(current))
            current = bytearray()
        current += line
    if current:
        records.append(bytes(current))
    return records


def stream_calls(records: Sequence[bytes]) -> list[list[bytes]]:
    """Records grouped into as few ``PutRecordBatch`` calls as its limits allow."""
    calls: list[list[bytes]] = []
    current: list[bytes] = []
    size = 0
    for record in records:
        if current and (len(current) >= STREAM_CALL_RECORDS or size + len(record) > STREAM_CALL_BYTES):
            calls.append(current)
            current, size = [], 0
        current.append(record)
        size += len(record)
    if current:
        calls.append(current)
    return calls


def budget_minute(moment: datetime) -> str:
    """The minute a node's byte budget is counted in (UTC, ``YYYY-MM-DDTHH:MM``)."""
    return moment.strftime("%Y-%m-%dT%H:%M")


def seconds_to_next_minute(moment: datetime) -> int:
    """``Retry-After`` for a spent budget: whole seconds until the next minute starts."""
    return max(1, 60 - moment.second)
