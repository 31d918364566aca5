"""Request decoding (SPEC §17): content codings, bounded inflation, storable strict JSON."""

from __future__ import annotations

import base64
import gzip
import tracemalloc
import zlib

import pytest

from orchestrator.errors import InvalidBody, RequestBodyTooLarge, UnsupportedContentEncoding
from orchestrator.http.request_body import (
    MAX_DEPTH,
    content_codings,
    decoded_body,
    inflate_gzip,
    json_document,
    raw_body,
)

LIMIT = 1024 * 1024


def gzip_bomb(inflated: int, chunk: int = 1024 * 1024) -> bytes:
    """``inflated`` zero bytes as one gzip member, built without holding them (~1/1000 the size)."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(chunk)
    parts = [deflater.compress(zeros) for _ in range(inflated // chunk)]
    return b"".join(parts) + deflater.flush()


@pytest.mark.parametrize(
    ("header", "codings"),
    [
        (None, []),
        ("", []),
        ("identity", []),
        ("gzip", ["gzip"]),
        ("GZIP", ["gzip"]),
        ("x-gzip", ["x-gzip"]),
        ("identity, gzip", ["gzip"]),
        ("gzip, gzip", ["gzip", "gzip"]),
    ],
)
def test_gzip_and_identity_codings_are_accepted(header: str | None, codings: list[str]) -> None:
    assert content_codings(header) == codings


@pytest.mark.parametrize("header", ["br", "deflate", "compress", "zstd", "gzip, br", "gzip;q=1"])
def test_any_other_coding_is_415(header: str) -> None:
    with pytest.raises(UnsupportedContentEncoding) as refused:
        content_codings(header)
    assert refused.value.status == 415 and refused.value.code == "unsupported_content_encoding"


def test_gzip_body_inflates_to_what_was_sent() -> None:
    body = b'{"hostname":"web-01","metadata":{"os":"linux"}}' * 50
    assert decoded_body(gzip.compress(body, 6), "gzip", LIMIT) == body
    assert decoded_body(body, "identity", LIMIT) == body
    assert decoded_body(body, None, LIMIT) == body


def test_concatenated_gzip_members_are_one_body() -> None:
    assert inflate_gzip(gzip.compress(b'{"a":') + gzip.compress(b"1}"), LIMIT) == b'{"a":1}'


@pytest.mark.parametrize(
    "body",
    [
        b'{"plain": "json"}',  # says gzip, is not
        gzip.compress(b'{"a": 1}')[:-6],  # truncated: no whole trailer
        gzip.compress(b'{"a": 1}')[:12],  # header only
        gzip.compress(b'{"a": 1}') + b"trailing",  # garbage after the member
        gzip.compress(b'{"a": 1}')[:10] + b"\x00" * 20,  # corrupt deflate data
    ],
)
def test_a_corrupt_gzip_stream_is_400(body: bytes) -> None:
    with pytest.raises(InvalidBody):
        decoded_body(body, "gzip", LIMIT)


def test_the_limit_holds_on_the_wire_and_inflated() -> None:
    with pytest.raises(RequestBodyTooLarge):
        decoded_body(b"x" * (LIMIT + 1), None, LIMIT)
    with pytest.raises(RequestBodyTooLarge):
        decoded_body(gzip.compress(b"x" * (LIMIT + 1)), "gzip", LIMIT)
    assert len(decoded_body(gzip.compress(b"x" * LIMIT), "gzip", LIMIT)) == LIMIT


def test_a_200_mib_gzip_bomb_is_refused_in_bounded_memory() -> None:
    # Given 200 MiB of zeros gzipped to a couple of hundred KB
    bomb = gzip_bomb(200 * 1024 * 1024)
    assert len(bomb) < 300 * 1024
    # When it is decoded with a 1 MiB limit
    tracemalloc.start()
    try:
        with pytest.raises(RequestBodyTooLarge):
            decoded_body(bomb, "gzip", LIMIT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Then it stops at the limit: memory stays within a few times the limit, not 200 MiB
    assert peak < 8 * LIMIT


def test_base64_bodies_are_bytes_and_text_bodies_utf8() -> None:
    payload = gzip.compress(b"{}")
    assert raw_body(base64.b64encode(payload).decode(), is_base64_encoded=True) == payload
    assert raw_body('{"a":"é"}', is_base64_encoded=False) == '{"a":"é"}'.encode()
    assert raw_body(None, is_base64_encoded=False) == b""
    with pytest.raises(InvalidBody):
        raw_body("not base64!", is_base64_encoded=True)


@pytest.mark.parametrize(
    "content",
    [
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b'{"a": -Infinity}',
        b'{"a": 1e400}',
        b'{"a": 1e200}',
        b'{"a": 1e-200}',
        b'{"a": 1e-400}',  # a float would round it to 0: refused, not silently changed
        b'{"a": ' + b"9" * 39 + b"}",  # 39 significant digits
        b'{"a": 0.' + b"1" * 39 + b"}",
        b'{"a": "\\ud800"}',  # a lone surrogate
        b'{"\\udfff": 1}',
        b'{"a": "\xff\xfe"}',  # not UTF-8
        b"\xef\xbb\xbf{}",  # a BOM is not JSON
        b"[" * 100_000 + b"]" * 100_000,  # deeper than the parser's recursion
        b'{"a": ' + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b"}",
        b'{"a": 1',
        b"",
    ],
)
def test_json_that_dynamodb_cannot_store_is_400(content: bytes) -> None:
    with pytest.raises(InvalidBody) as refused:
        json_document(content)
    assert refused.value.status == 400 and refused.value.code == "invalid_body"


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b'{"parameters": {"n": NaN}}', "parameters.n"),
        (b'{"parameters": {"list": [1, 2, 1e400]}}', "parameters.list.2"),
        (b'{"exit_code": 123456789012345678901234567890123456789}', "exit_code"),
        (b'{"metadata": {"os": "\\udc00"}}', "metadata.os"),
        (b'{"metadata": {"\\ud800": "x"}}', "metadata.\ud800"),
        (b'{"a": ' + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b"}", "a." + ".".join(["0"] * (MAX_DEPTH - 1))),
        (b"1e999", "(body)"),
        (b'{"n": ' + b"1" * 5000 + b"}", "n"),
        (b'{"' + b"k" * 5000 + b'": NaN}', "k" * 200),  # a huge key is named by its start
    ],
)
def test_a_refusal_names_the_field(content: bytes, field: str) -> None:
    with pytest.raises(InvalidBody) as refused:
        json_document(content)
    assert refused.value.extensions["errors"][0]["field"] == field
    assert refused.value.detail.startswith(field)


@pytest.mark.parametrize(
    ("content", "value"),
    [
        (b'{"a": 1e125}', {"a": 1e125}),
        (b'{"a": 1e-130}', {"a": 1e-130}),
        (b'{"a": 0.0}', {"a": 0.0}),
        (b'{"a": ' + b"9" * 38 + b"}", {"a": int("9" * 38)}),
        (b'{"a": 100000000000000000000000000000000000000000000}', {"a": 10**44}),  # one significant digit
        (b'{"a": "\\ud83d\\ude00"}', {"a": "\N{GRINNING FACE}"}),  # a surrogate pair is a character
        (b'{"a": ' + b"[" * (MAX_DEPTH - 1) + b"]" * (MAX_DEPTH - 1) + b"}", None),
    ],
)
def test_storable_json_is_accepted(content: bytes, value: object) -> None:
    document = json_document(content)
    if value is not None:
        assert document == value


def test_past_sixty_four_gzip_members_the_body_is_400() -> None:
    # Each member copies the rest of the stream: thousands of tiny members would cost
    # quadratic time, so a body of more than 64 (clients send one) is refused.
    member = gzip.compress(b"x")
    assert inflate_gzip(member * 64, 1024) == b"x" * 64
    with pytest.raises(InvalidBody):
        inflate_gzip(member * 65, 1024)
