"""Request bodies as real clients send them (SPEC §17): the one place a body is decoded.

The node agent gzips every body over 1 KiB and says so with ``Content-Encoding: gzip``.
The API declares every media type binary, so API Gateway hands each function the bytes the
client sent, base64-encoded; local mode's gateway does the same. Here they are:

1. taken off base64 as bytes (never read as text first: a gzip stream is not UTF-8);
2. inflated for ``gzip`` (``x-gzip``), member after member, never past the body limit:
   a 200 MiB bomb of ~200 KB on the wire stops at limit + 1 bytes with 413, in memory
   bounded by the limit; ``identity`` leaves them as they are; any other coding is 415;
3. parsed as strict UTF-8 JSON that DynamoDB can store: no ``NaN``/``Infinity``, numbers
   within DynamoDB's range and 38 significant digits, no lone surrogates, bounded nesting
   (400 ``invalid_body`` otherwise), so nothing a client sends reaches the table only to
   fail there.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import zlib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from orchestrator.domain import telemetry
from orchestrator.errors import IngestBodyTooLarge, InvalidBody, RequestBodyTooLarge, UnsupportedContentEncoding

GZIP_CODINGS = frozenset({"gzip", "x-gzip"})
IDENTITY = "identity"
GZIP_MAGIC = b"\x1f\x8b"
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # a gzip wrapper, not zlib's or raw deflate

# What DynamoDB stores (its number type and nesting); a request body stays well inside it,
# since stored items nest request values a few levels down (e.g. an event's payload).
MAX_GZIP_MEMBERS = 64  # clients send one; concatenated streams are valid gzip, up to this
MAX_DEPTH = 20
MAX_SIGNIFICANT_DIGITS = 38
MIN_ADJUSTED_EXPONENT = -130
MAX_ADJUSTED_EXPONENT = 125
FIELD_SHOWN = 200
_SURROGATE = re.compile("[\ud800-\udfff]")


def raw_body(body: str | None, *, is_base64_encoded: bool) -> bytes:
    """The bytes of an API Gateway proxy event's body."""
    if body is None:
        return b""
    if not is_base64_encoded:
        try:
            return body.encode("utf-8")
        except UnicodeEncodeError as exc:  # a text body with lone surrogates
            raise InvalidBody("The body is not valid UTF-8.") from exc
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidBody("The body could not be decoded.") from exc


def encoded_size(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON: what a bound on a stored field measures."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def content_codings(header: str | None) -> list[str]:
    """The gzip codings a ``Content-Encoding`` header applies (identity ones dropped);
    415 ``unsupported_content_encoding`` for any other coding."""
    codings = [c.strip().lower() for c in (header or "").split(",")]
    for coding in codings:
        if coding and coding != IDENTITY and coding not in GZIP_CODINGS:
            raise UnsupportedContentEncoding(
                f"Content-Encoding {coding!r} is not supported; send the body as gzip or identity."
            )
    return [c for c in codings if c in GZIP_CODINGS]


def inflate_gzip(data: bytes, limit: int) -> bytes:
    """A gzip stream's content (one or more members), refused with 413 as soon as it would
    pass ``limit`` bytes: at most ``limit + 1`` bytes are ever inflated."""
    if not data.startswith(GZIP_MAGIC):
        raise InvalidBody("The body is not a gzip stream, as its Content-Encoding says.")
    out = bytearray()
    pending = data
    members = 0
    while pending:
        if not pending.startswith(GZIP_MAGIC):
            raise InvalidBody("The gzip stream is followed by data that is not gzip.")
        members += 1
        if members > MAX_GZIP_MEMBERS:  # each one copies the rest: thousands of tiny ones are a cost
            raise InvalidBody(f"The gzip stream has more than {MAX_GZIP_MEMBERS} members.")
        inflater = zlib.decompressobj(_GZIP_WBITS)
        try:
            out += inflater.decompress(pending, limit + 1 - len(out))
        except zlib.error as exc:
            raise InvalidBody("The gzip stream is corrupt.") from exc
        if len(out) > limit:
            raise RequestBodyTooLarge(f"The request body inflates to more than {limit} bytes.")
        if not inflater.eof:
            raise InvalidBody("The gzip stream ends early.")
        pending = inflater.unused_data
    return bytes(out)


def decoded_body(raw: bytes, content_encoding: str | None, limit: int) -> bytes:
    """The body's content: 415 for an unsupported coding, 413 past ``limit`` bytes on the
    wire or inflated, 400 for a corrupt stream."""
    codings = content_codings(content_encoding)
    if len(raw) > limit:
        raise RequestBodyTooLarge(f"The request body exceeds {limit} bytes.")
    for _ in codings:
        raw = inflate_gzip(raw, limit)
    return raw


def telemetry_batch(raw: bytes, content_encoding: str | None) -> bytes:
    """The batch's bytes: 413 ``ingest_body_too_large`` past the caps on the wire and
    inflated (checked while inflating: a bomb stops at the cap), 415 for a coding other than
    gzip or identity, 400 for a corrupt gzip stream."""
    telemetry.check_compressed_size(len(raw))
    content = raw
    try:
        for _ in content_codings(content_encoding):
            content = inflate_gzip(content, telemetry.MAX_INFLATED_BYTES)
    except RequestBodyTooLarge as exc:
        raise IngestBodyTooLarge(
            f"The batch inflates to more than {telemetry.MAX_INFLATED_BYTES} bytes.",
            dimension="inflated_bytes",
            limit=telemetry.MAX_INFLATED_BYTES,
        ) from exc
    if len(content) > telemetry.MAX_INFLATED_BYTES:
        raise IngestBodyTooLarge(
            f"The batch is more than {telemetry.MAX_INFLATED_BYTES} bytes.",
            dimension="inflated_bytes",
            limit=telemetry.MAX_INFLATED_BYTES,
        )
    return content


class _Refused(ValueError):
    """A JSON value DynamoDB could not store, at ``field`` (dotted, list indexes as numbers)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        # A key may be as long as the body: the Problem names at most the first 200 characters.
        self.field = (field or "(body)")[:FIELD_SHOWN]
        self.message = message


@dataclass(frozen=True, slots=True)
class _Number:
    """A number literal, checked where it stands (so a refusal can name its field)."""

    literal: str
    integral: bool


def json_document(content: bytes) -> Any:
    """The body's JSON value, refused with 400 ``invalid_body`` (naming the field) unless it
    is strict UTF-8 JSON that DynamoDB can store (see the module docstring)."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidBody("The body is not valid UTF-8.") from exc
    try:
        parsed = json.loads(
            text,
            parse_constant=lambda name: _Number(name, integral=False),
            parse_int=lambda literal: _Number(literal, integral=True),
            parse_float=lambda literal: _Number(literal, integral=False),
        )
    except RecursionError as exc:
        raise InvalidBody(f"The body nests deeper than {MAX_DEPTH} levels.") from exc
    except ValueError as exc:
        raise InvalidBody("The body is not valid JSON.") from exc
    try:
        return _resolve(parsed, "", 0)
    except _Refused as exc:
        raise InvalidBody(f"{exc.field}: {exc.message}", errors=[{"field": exc.field, "message": exc.message}]) from exc


def _resolve(value: Any, field: str, depth: int) -> Any:
    """``value`` with its numbers as int/float, refused where DynamoDB could not store it:
    numbers out of its range, lone surrogates, nesting past ``MAX_DEPTH``."""
    if isinstance(value, _Number):
        return _number(value, field)
    if isinstance(value, str):
        if _SURROGATE.search(value):
            raise _Refused(field, "a lone UTF-16 surrogate is not a character")
        return value
    if isinstance(value, dict | list) and depth >= MAX_DEPTH:
        raise _Refused(field, f"nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        resolved: dict[str, Any] = {}
        for key, item in value.items():
            inner = f"{field}.{key}" if field else key
            _resolve(key, inner, depth)
            resolved[key] = _resolve(item, inner, depth + 1)
        return resolved
    if isinstance(value, list):
        return [
            _resolve(item, f"{field}.{index}" if field else str(index), depth + 1) for index, item in enumerate(value)
        ]
    return value


def _number(number: _Number, field: str) -> int | float:
    literal = number.literal
    shown = literal if len(literal) <= 40 else literal[:40] + "..."
    try:
        value = Decimal(literal)
    except InvalidOperation as exc:
        raise _Refused(field, f"{shown} is not a number") from exc
    if not value.is_finite():
        raise _Refused(field, f"{shown} is not a JSON number")
    if value != 0:
        significant = len("".join(map(str, value.as_tuple().digits)).strip("0"))
        if significant > MAX_SIGNIFICANT_DIGITS or not (
            MIN_ADJUSTED_EXPONENT <= value.adjusted() <= MAX_ADJUSTED_EXPONENT
        ):
            raise _Refused(
                field,
                f"{shown} is out of range: at most {MAX_SIGNIFICANT_DIGITS} significant digits,"
                f" magnitude 1E{MIN_ADJUSTED_EXPONENT} to below 1E+{MAX_ADJUSTED_EXPONENT + 1}",
            )
    if number.integral:
        return int(value)
    as_float = float(literal)
    # What is stored is the float's shortest repr: it must be in range too (1e-400 would be 0).
    if (
        not math.isfinite(as_float)
        or (as_float != 0) is not (value != 0)
        or (as_float != 0 and not 1e-130 <= abs(as_float) < 1e126)
    ):
        raise _Refused(field, f"{shown} is out of range")
    return as_float
