"""Signed envelopes and SSE framing (SPEC §11).

The signer is checked against an independent re-implementation of what a
node's Go verifier does, not against itself: :class:`GoStyleNode` parses the
SSE frame, decodes ``data`` the way ``encoding/json`` decodes into a struct
with a ``map[string]any`` payload (every number becomes a float64),
re-marshals the signed fields with its own character-by-character encoder,
then checks the Ed25519 signature, the 5-minute freshness window and nonce
reuse. Golden vectors below were written by hand from Go's rules.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.events.envelope import (
    Envelope,
    envelope_json,
    go_json,
    new_nonce,
    parse_envelope,
    rfc3339_go,
    sign_envelope,
    signed_envelope_json,
    sse_message,
    sse_retry,
    verify_envelope,
)

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
ISSUED = datetime(2026, 11, 23, 7, 49, 56, 100000, tzinfo=UTC)
PLUS_0130 = timezone(timedelta(hours=1, minutes=30))


# --- An independent Go-style verifier -------------------------------------------------

_GO_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_GO_HTML_UNSAFE = {"<", ">", "&", "\u2028", "\u2029"}
_GO_TIME_RFC3339NANO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z")
_SIGNED_ORDER = ("event_type", "event_id", "issued_at", "nonce", "payload")
MAX_AGE = timedelta(minutes=5)


def _go_quote(text: str) -> str:
    """encodeState.string with escapeHTML, one character at a time (Go 1.22+)."""
    pieces = ['"']
    for char in text:
        if char in _GO_SHORT_ESCAPES:
            pieces.append(_GO_SHORT_ESCAPES[char])
        elif ord(char) < 0x20 or char in _GO_HTML_UNSAFE:
            pieces.append("\\u" + format(ord(char), "04x"))
        else:
            pieces.append(char)
    pieces.append('"')
    return "".join(pieces)


def _go_number(number: float) -> str:
    """floatEncoder for float64: fixed notation in [1e-6, 1e21), else exponent without zero padding."""
    if number == 0:
        return "-0" if math.copysign(1.0, number) < 0 else "0"
    shortest = Decimal(repr(number))
    if 1e-6 <= abs(number) < 1e21:
        text = format(shortest, "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    return format(shortest.normalize(), "e")


def _go_marshal(value: Any) -> str:
    """Marshal what ``json.Unmarshal`` into ``any`` produced; maps sorted by UTF-8 bytes."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _go_number(value)
    if isinstance(value, str):
        return _go_quote(value)
    if isinstance(value, list):
        return "[" + ",".join(_go_marshal(item) for item in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=lambda key: key.encode("utf-8"))
        return "{" + ",".join(_go_quote(key) + ":" + _go_marshal(value[key]) for key in keys) + "}"
    raise AssertionError(f"a Go decoder never yields {type(value).__name__}")


def _go_decode(data: str) -> Any:
    """Go decodes every JSON number into float64 and knows no NaN/Infinity."""

    def no_constants(name: str) -> Any:
        raise ValueError(name)

    return json.loads(data, parse_int=float, parse_constant=no_constants)


def _parse_sse(text: str) -> list[dict[str, str]]:
    """Frames of an SSE stream per the WHATWG rules (CR, LF and CRLF all end a line)."""
    frames: list[dict[str, str]] = []
    fields: dict[str, list[str]] = {}
    for line in re.split(r"\r\n|\r|\n", text):
        if line == "":
            if fields:
                frames.append({name: "\n".join(values) for name, values in fields.items()})
            fields = {}
            continue
        name, _, value = line.partition(":")
        fields.setdefault(name, []).append(value.removeprefix(" "))
    assert not fields, "stream ended inside a frame"
    return frames


class Rejected(Exception):
    pass


@dataclass
class GoStyleNode:
    public_key: Ed25519PublicKey
    now: datetime
    seen_nonces: set[str] = field(default_factory=set)

    def receive(self, message: str) -> dict[str, Any]:
        frames = _parse_sse(message)
        if len(frames) != 1:
            raise Rejected(f"expected one frame, got {len(frames)}")
        frame = frames[0]
        envelope: dict[str, Any] = _go_decode(frame["data"])
        self._check_shape(envelope)
        if frame.get("id") != envelope["event_id"] or frame.get("event") != envelope["event_type"]:
            raise Rejected("frame id/event differ from the envelope")
        signed = "{" + ",".join(f'"{name}":{_go_marshal(envelope[name])}' for name in _SIGNED_ORDER) + "}"
        try:
            signature = base64.b64decode(envelope["signature"], validate=True)
            self.public_key.verify(signature, signed.encode("utf-8"))
        except (binascii.Error, InvalidSignature) as error:
            raise Rejected("bad signature") from error
        if not _GO_TIME_RFC3339NANO_UTC.fullmatch(envelope["issued_at"]):
            raise Rejected("issued_at is not how Go marshals a UTC time")
        if self.now - datetime.fromisoformat(envelope["issued_at"]) > MAX_AGE:
            raise Rejected("stale event")
        if envelope["nonce"] in self.seen_nonces:
            raise Rejected("nonce reused")
        self.seen_nonces.add(envelope["nonce"])
        return envelope

    @staticmethod
    def _check_shape(envelope: Any) -> None:
        if not isinstance(envelope, dict):
            raise Rejected("envelope is not an object")
        for name in ("event_type", "event_id", "issued_at", "nonce", "signature"):
            if not isinstance(envelope.get(name), str):
                raise Rejected(f"{name} is not a string")
        if not isinstance(envelope.get("payload"), dict):
            raise Rejected("payload is not an object")


def _node(now: datetime = ISSUED + timedelta(seconds=1)) -> GoStyleNode:
    return GoStyleNode(KEY.public_key(), now)


def _sign(payload: dict[str, Any], *, nonce: str = "bm9uY2U", issued_at: datetime = ISSUED) -> Envelope:
    return sign_envelope(
        KEY, event_type="action_request", event_id="0193-evt", payload=payload, issued_at=issued_at, nonce=nonce
    )


def _frame(envelope: Envelope) -> str:
    return sse_message(envelope["event_id"], envelope["event_type"], envelope_json(envelope))


def _reframe(envelope: dict[str, Any], data: str) -> str:
    return sse_message(envelope["event_id"], envelope["event_type"], data)


def _forged(envelope: Envelope, signed_text: str) -> str:
    """The same envelope, signed with the real key over some other serialization."""
    forged = dict(envelope)
    forged["signature"] = base64.b64encode(KEY.sign(signed_text.encode("utf-8"))).decode()
    return _reframe(forged, envelope_json(forged))  # type: ignore[arg-type]


# --- go_json: golden vectors from Go's rules ----------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"b": 1, "a": "<&>"}, '{"a":"\\u003c\\u0026\\u003e","b":1}'),
        ("<script>&</script>", '"\\u003cscript\\u003e\\u0026\\u003c/script\\u003e"'),
        ("\u2028\u2029", '"\\u2028\\u2029"'),
        ("é ü 日本 😀", '"é ü 日本 😀"'),
        ('"\\', '"\\"\\\\"'),
        ("\b\f\n\r\t", '"\\b\\f\\n\\r\\t"'),
        ("\x00\x01\x0b\x1f", '"\\u0000\\u0001\\u000b\\u001f"'),
        ("\x7f ~", '"\x7f ~"'),
        ("/", '"/"'),
        (1e21, "1e+21"),
        (1e-7, "1e-7"),
        (1.234e-7, "1.234e-7"),
        (-3e-9, "-3e-9"),
        (1e-10, "1e-10"),
        (5e-324, "5e-324"),
        (1.5e300, "1.5e+300"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (1e20, "100000000000000000000"),
        (1e-6, "0.000001"),
        (1.234e-6, "0.000001234"),
        (0.1, "0.1"),
        (123456789.0, "123456789"),
        (12345.678, "12345.678"),
        (-2.5, "-2.5"),
        (0.0, "0"),
        (-0.0, "-0"),
        (0, "0"),
        (-42, "-42"),
        (2**53, "9007199254740992"),
        (-(2**53), "-9007199254740992"),
        # Larger integers only as Go writes a float64 (1e20 parses back as an int).
        (2**53 + 2, "9007199254740994"),
        (10**20, "100000000000000000000"),
        (True, "true"),
        (False, "false"),
        (None, "null"),
        ([], "[]"),
        ({}, "{}"),
        ([1, "a", None, [True]], '[1,"a",null,[true]]'),
        ({"z": {"y": 1, "x": [{"b": 2, "a": 1}]}, "a": 0}, '{"a":0,"z":{"x":[{"a":1,"b":2}],"y":1}}'),
        # Keys sort by raw bytes, before escaping: "<" (0x3c) precedes "A" (0x41).
        ({"A": 1, "<": 2}, '{"\\u003c":2,"A":1}'),
        ({"é": 1, "z": 2, "Z": 3, "a": 4}, '{"Z":3,"a":4,"z":2,"é":1}'),
        # UTF-8 order, not UTF-16 order (where the emoji's surrogate would sort first).
        ({"😀": 1, "\uff61": 2}, '{"\uff61":2,"😀":1}'),
    ],
)
def test_go_json_matches_go_encoding_json(value: Any, expected: str) -> None:
    assert go_json(value) == expected


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (math.nan, ValueError),
        (math.inf, ValueError),
        (-math.inf, ValueError),
        (2**53 + 1, ValueError),
        (-(2**53) - 1, ValueError),
        (2**60, ValueError),
        (10**21, ValueError),
        (10**400, ValueError),
        ("\ud800", ValueError),
        ({"k": ["\udc00"]}, ValueError),
        ({"\ud83d": 1}, ValueError),
        ({1: "x"}, TypeError),
        (b"bytes", TypeError),
        ({1, 2}, TypeError),
        (Decimal("1.5"), TypeError),
    ],
)
def test_values_go_cannot_round_trip_are_refused(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        go_json(value)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_float_formats_like_the_independent_go_encoder(number: float) -> None:
    assert go_json(number) == _go_number(number)


@given(st.text())
def test_every_string_escapes_like_the_independent_go_encoder(text: str) -> None:
    assert go_json(text) == _go_quote(text)


@given(st.text(alphabet=st.characters(codec=None, categories=None)))  # lone surrogates too
def test_a_string_needing_no_escape_is_quoted_as_is_and_a_lone_surrogate_is_refused(text: str) -> None:
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        with pytest.raises(ValueError, match="surrogate"):
            go_json(text)
    else:
        assert go_json(text) == _go_quote(text)


# --- rfc3339_go ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (ISSUED, "2026-11-23T07:49:56.1Z"),
        (datetime(2026, 11, 23, 7, 49, 56, tzinfo=UTC), "2026-11-23T07:49:56Z"),
        (datetime(2026, 11, 23, 7, 49, 56, 123456, tzinfo=UTC), "2026-11-23T07:49:56.123456Z"),
        (datetime(2026, 11, 23, 7, 49, 56, 120, tzinfo=UTC), "2026-11-23T07:49:56.00012Z"),
        (
            datetime(2026, 11, 23, 9, 19, 56, 500000, tzinfo=timezone(timedelta(hours=1, minutes=30))),
            "2026-11-23T07:49:56.5Z",
        ),
        (datetime(2027, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=2))), "2026-12-31T22:30:00Z"),
        (datetime(987, 6, 5, 4, 3, 2, tzinfo=UTC), "0987-06-05T04:03:02Z"),
    ],
)
def test_rfc3339_go_is_utc_with_trailing_fraction_zeros_removed(moment: datetime, expected: str) -> None:
    assert rfc3339_go(moment) == expected


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        rfc3339_go(datetime(2026, 11, 23, 7, 49, 56))


# --- sign_envelope / envelope_json: golden vector -----------------------------------

GOLDEN_PAYLOAD: dict[str, Any] = {
    "when": "<now>",
    "n": 1,
    "f": 1e-7,
    "list": [True, None, "é"],
    "A": {"z": 1, "a": "\u2028"},
}
GOLDEN_SIGNED = (
    '{"event_type":"action_request","event_id":"0193-evt","issued_at":"2026-11-23T07:49:56.1Z",'
    '"nonce":"bm9uY2U","payload":{"A":{"a":"\\u2028","z":1},"f":1e-7,"list":[true,null,"é"],"n":1,'
    '"when":"\\u003cnow\\u003e"}}'
)


def test_signature_covers_the_hand_written_go_bytes() -> None:
    envelope = _sign(GOLDEN_PAYLOAD)

    KEY.public_key().verify(base64.b64decode(envelope["signature"], validate=True), GOLDEN_SIGNED.encode("utf-8"))
    assert envelope["issued_at"] == "2026-11-23T07:49:56.1Z"
    assert len(envelope["signature"]) == 88 and envelope["signature"].endswith("==")


def test_data_line_is_the_envelope_in_field_order_with_signature_last() -> None:
    envelope = _sign(GOLDEN_PAYLOAD)

    assert envelope_json(envelope) == GOLDEN_SIGNED[:-1] + f',"signature":"{envelope["signature"]}"}}'
    assert list(envelope) == ["event_type", "event_id", "issued_at", "nonce", "payload", "signature"]


def test_payload_is_copied_so_later_mutation_cannot_break_the_signature() -> None:
    payload: dict[str, Any] = {"params": {"x": 1}}
    envelope = _sign(payload)

    payload["params"]["x"] = 2

    assert _node().receive(_frame(envelope))["payload"] == {"params": {"x": 1}}


# --- Round trips through SSE and the independent verifier ---------------------------

MIXED_PAYLOAD: dict[str, Any] = {
    "zeta": "<script>alert('x')&amp;</script>",
    "line_separators": "a\u2028b\u2029c",
    "emoji": "🚀😀👩‍💻",
    "accents": "Crème brûlée, naïve, Ærøskøbing",
    "nested": {"z": 1, "b": {"y": [3, 2, 1], "a": None}, "A": "upper"},
    "list": [1, -2, 0.5, "two", [None, True, False], {"k": "v", "a": "b"}],
    "ints": [0, 7, -(2**53), 2**53],
    "floats": [0.1, 1e21, 1e-7, 123456789.0, -0.0, 1.5e-300, 2.5e25],
    "flags": {"on": True, "off": False, "none": None},
    "controls": "\x00\x01\b\f\n\r\t\x1b\x1f\x7f",
    "quotes": 'say "hi" \\ back\\slash \\u0041 /',
    "": "empty key",
    "<key&>": "escaped key",
}


def test_mixed_payload_round_trips_through_sse_and_a_go_verifier() -> None:
    envelope = _sign(MIXED_PAYLOAD)

    received = _node().receive(_frame(envelope))

    assert received["payload"] == MIXED_PAYLOAD
    assert received["event_type"] == "action_request" and received["event_id"] == "0193-evt"


@pytest.mark.parametrize(
    "text",
    ["<script>&", "\u2028", "\u2029", "😀", "é", "\x00", "\b", "\f", "\x1f", "\x7f", '"', "\\", "\r\n", "\ufeff"],
)
def test_each_tricky_character_round_trips(text: str) -> None:
    envelope = _sign({"text": text, text: "as a key"})

    assert _node().receive(_frame(envelope))["payload"] == {"text": text, text: "as a key"}


def test_data_line_is_one_line_with_html_and_separators_escaped_and_utf8_kept() -> None:
    data = envelope_json(_sign(MIXED_PAYLOAD))

    assert "\n" not in data and "\r" not in data
    for raw in ("<", ">", "&", "\u2028", "\u2029"):
        assert raw not in data
    assert "Crème brûlée" in data and "🚀" in data
    assert "\\u003cscript\\u003e" in data


def test_key_order_and_escaping_in_transit_do_not_matter_to_a_re_marshalling_verifier() -> None:
    # Given a relay that re-serializes the data with reversed keys, ASCII escapes and spaces
    envelope = _sign(MIXED_PAYLOAD)
    relayed = json.dumps(dict(reversed(list(envelope.items()))), ensure_ascii=True, separators=(", ", ": "))

    # Then the verifier still accepts: it signs over its own re-marshalling
    assert _node().receive(_reframe(dict(envelope), relayed))["payload"] == MIXED_PAYLOAD


def test_a_stream_of_messages_ends_with_a_retry_hint() -> None:
    first = _sign({"n": 1}, nonce="n1")
    second = _sign({"n": 2}, nonce="n2")
    stream = _frame(first) + _frame(second) + sse_retry(3000)

    frames = _parse_sse(stream)

    assert [frame.get("data") for frame in frames[:2]] == [envelope_json(first), envelope_json(second)]
    assert frames[2] == {"retry": "3000"}
    node = _node()
    assert [node.receive(_frame(e))["payload"]["n"] for e in (first, second)] == [1, 2]


# --- What the verifier must reject --------------------------------------------------


def test_tampered_signature_is_rejected() -> None:
    envelope = _sign({"a": 1})
    raw = bytearray(base64.b64decode(envelope["signature"]))
    raw[0] ^= 1
    envelope["signature"] = base64.b64encode(bytes(raw)).decode()

    with pytest.raises(Rejected, match="signature"):
        _node().receive(_frame(envelope))


@pytest.mark.parametrize(
    ("field_name", "value"),
    [
        ("payload", {"a": 2}),
        ("payload", {"a": 1, "extra": True}),
        ("event_type", "action_cancel"),
        ("event_id", "0193-other"),
        ("nonce", "other-nonce"),
        ("issued_at", "2026-11-23T07:49:57.1Z"),
    ],
)
def test_tampered_field_is_rejected(field_name: str, value: Any) -> None:
    envelope: dict[str, Any] = dict(_sign({"a": 1}))
    envelope[field_name] = value

    with pytest.raises(Rejected, match="signature"):
        _node().receive(_reframe(envelope, envelope_json(envelope)))  # type: ignore[arg-type]


def test_signature_from_another_key_is_rejected() -> None:
    envelope = sign_envelope(
        OTHER_KEY, event_type="action_request", event_id="0193-evt", payload={}, issued_at=ISSUED, nonce="n"
    )

    with pytest.raises(Rejected, match="signature"):
        _node().receive(_frame(envelope))


PAYLOAD_FOR_FORGERY: dict[str, Any] = {"b": "<x>", "a": "\b", "c": 1e-7}


@pytest.mark.parametrize(
    "signed_text",
    [
        # Payload keys in insertion order: Go sorts map keys.
        '{"event_type":"action_request","event_id":"0193-evt","issued_at":"2026-11-23T07:49:56.1Z",'
        '"nonce":"bm9uY2U","payload":{"b":"\\u003cx\\u003e","a":"\\b","c":1e-7}}',
        # Struct fields sorted: Go keeps declaration order.
        '{"event_id":"0193-evt","event_type":"action_request","issued_at":"2026-11-23T07:49:56.1Z",'
        '"nonce":"bm9uY2U","payload":{"a":"\\b","b":"\\u003cx\\u003e","c":1e-7}}',
        # HTML characters left raw.
        '{"event_type":"action_request","event_id":"0193-evt","issued_at":"2026-11-23T07:49:56.1Z",'
        '"nonce":"bm9uY2U","payload":{"a":"\\b","b":"<x>","c":1e-7}}',
        # Pre-1.22 Go escaping of backspace.
        '{"event_type":"action_request","event_id":"0193-evt","issued_at":"2026-11-23T07:49:56.1Z",'
        '"nonce":"bm9uY2U","payload":{"a":"\\u0008","b":"\\u003cx\\u003e","c":1e-7}}',
        # Python's float spelling.
        '{"event_type":"action_request","event_id":"0193-evt","issued_at":"2026-11-23T07:49:56.1Z",'
        '"nonce":"bm9uY2U","payload":{"a":"\\b","b":"\\u003cx\\u003e","c":1e-07}}',
        # Python's default separators.
        json.dumps(
            {
                "event_type": "action_request",
                "event_id": "0193-evt",
                "issued_at": "2026-11-23T07:49:56.1Z",
                "nonce": "bm9uY2U",
                "payload": {"a": "\b", "b": "<x>", "c": 1e-7},
            }
        ),
    ],
)
def test_signature_over_any_other_serialization_is_rejected(signed_text: str) -> None:
    envelope = _sign(PAYLOAD_FOR_FORGERY)

    with pytest.raises(Rejected, match="signature"):
        _node().receive(_forged(envelope, signed_text))


def test_forgery_helper_itself_is_accepted_with_the_correct_bytes() -> None:
    # Guards the test above: with the right bytes the same path is accepted.
    correct = (
        '{"event_type":"action_request","event_id":"0193-evt","issued_at":"2026-11-23T07:49:56.1Z",'
        '"nonce":"bm9uY2U","payload":{"a":"\\b","b":"\\u003cx\\u003e","c":1e-7}}'
    )

    _node().receive(_forged(_sign(PAYLOAD_FOR_FORGERY), correct))


def test_event_older_than_five_minutes_is_rejected() -> None:
    envelope = _sign({"a": 1})

    _node(now=ISSUED + timedelta(minutes=4, seconds=59)).receive(_frame(envelope))
    with pytest.raises(Rejected, match="stale"):
        _node(now=ISSUED + timedelta(minutes=5, seconds=1)).receive(_frame(envelope))


def test_reused_nonce_is_rejected() -> None:
    node = _node()
    node.receive(_frame(_sign({"a": 1}, nonce="once")))

    with pytest.raises(Rejected, match="nonce"):
        node.receive(_frame(_sign({"a": 1}, nonce="once")))
    with pytest.raises(Rejected, match="nonce"):
        node.receive(_frame(_sign({"different": "event"}, nonce="once")))
    node.receive(_frame(_sign({"a": 1}, nonce="twice")))


def test_envelopes_with_fresh_nonces_are_each_accepted() -> None:
    node = _node()

    for index in range(5):
        node.receive(_frame(_sign({"i": index}, nonce=new_nonce())))

    assert len(node.seen_nonces) == 5


# --- verify_envelope (our own checker, e.g. for the node simulator) -----------------


def test_verify_envelope_accepts_what_was_signed_and_what_was_parsed_back() -> None:
    envelope = _sign(MIXED_PAYLOAD)

    assert verify_envelope(KEY.public_key(), envelope)
    assert verify_envelope(KEY.public_key(), envelope_json(envelope))
    assert verify_envelope(KEY.public_key(), parse_envelope(envelope_json(envelope)))


def test_parse_envelope_keeps_negative_zero_as_go_does() -> None:
    # Plain json.loads reads "-0" as the integer 0, which re-marshals as "0".
    data = envelope_json(_sign({"x": -0.0, "y": 0, "z": 3}))

    payload = parse_envelope(data)["payload"]

    assert math.copysign(1.0, payload["x"]) < 0 and payload["y"] == 0 and isinstance(payload["z"], int)
    assert not verify_envelope(KEY.public_key(), json.loads(data))
    assert verify_envelope(KEY.public_key(), data)


@pytest.mark.parametrize("data", ["", "not json", "[1]", '{"payload": NaN}', '{"a": Infinity}'])
def test_parse_envelope_refuses_what_go_would_not_decode_into_an_envelope(data: str) -> None:
    with pytest.raises(ValueError):
        parse_envelope(data)
    assert not verify_envelope(KEY.public_key(), data)


def test_verify_envelope_rejects_tampering_and_other_keys() -> None:
    envelope = _sign({"a": 1})

    assert not verify_envelope(OTHER_KEY.public_key(), envelope)
    assert not verify_envelope(KEY.public_key(), {**envelope, "payload": {"a": 2}})
    assert not verify_envelope(KEY.public_key(), {**envelope, "nonce": "other"})


@pytest.mark.parametrize(
    "change",
    [
        {"signature": "not base64!"},
        {"signature": ""},
        {"payload": [1, 2]},
        {"payload": {"x": math.nan}},
        {"payload": {"x": 2**60}},
        {"event_type": 7},
        {"issued_at": None},
    ],
)
def test_verify_envelope_is_false_for_malformed_envelopes(change: dict[str, Any]) -> None:
    assert not verify_envelope(KEY.public_key(), {**_sign({"a": 1}), **change})


@pytest.mark.parametrize("missing", ["event_type", "event_id", "issued_at", "nonce", "payload", "signature"])
def test_verify_envelope_is_false_when_a_field_is_missing(missing: str) -> None:
    envelope = {name: value for name, value in _sign({"a": 1}).items() if name != missing}

    assert not verify_envelope(KEY.public_key(), envelope)


# --- Nonces and SSE framing ---------------------------------------------------------


def test_nonce_is_sixteen_random_bytes_in_unpadded_base64url() -> None:
    nonces = {new_nonce() for _ in range(100)}

    assert len(nonces) == 100
    for nonce in nonces:
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", nonce)
        assert len(base64.urlsafe_b64decode(nonce + "==")) == 16


def test_sse_message_and_retry_framing() -> None:
    assert sse_message("e1", "action_cancel", '{"a":1}') == 'id: e1\nevent: action_cancel\ndata: {"a":1}\n\n'
    assert sse_retry(3000) == "retry: 3000\n\n"
    assert sse_retry(0) == "retry: 0\n\n"


@pytest.mark.parametrize(
    ("event_id", "event_type", "data"),
    [("e\n1", "t", "{}"), ("e1", "t\r", "{}"), ("e1", "t", "{}\n{}"), ("e1", "t", "a\r\nb")],
)
def test_sse_fields_with_line_breaks_are_refused(event_id: str, event_type: str, data: str) -> None:
    with pytest.raises(ValueError, match="single line"):
        sse_message(event_id, event_type, data)


def test_negative_retry_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        sse_retry(-1)


# --- Property: the independent verifier accepts whatever the signer produces --------

_TRICKY = st.sampled_from(["<", ">", "&", "\u2028", "\u2029", "\b", "\f", "\n", "\r", "\t", "\x00", "\x1f", "\x7f"])
_OTHER = st.sampled_from(['"', "\\", "é", "😀", "\ufeff"]) | st.characters(exclude_categories=["Cs"])
_TEXT = st.text(alphabet=_TRICKY | _OTHER, max_size=12)
_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT
)
_VALUES = st.recursive(
    _LEAVES,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_TEXT, children, max_size=4),
    max_leaves=25,
)
_PAYLOADS = st.dictionaries(_TEXT, _VALUES, max_size=6)


@given(
    payload=_PAYLOADS,
    event_type=st.sampled_from(["action_request", "action_cancel", "signing_key_rotated"]),
    issued_at=st.datetimes(max_value=datetime(9999, 1, 1), timezones=st.just(UTC)),
    age=st.timedeltas(min_value=timedelta(0), max_value=MAX_AGE),
)
def test_go_style_verifier_accepts_every_signed_payload(
    payload: dict[str, Any], event_type: str, issued_at: datetime, age: timedelta
) -> None:
    envelope = sign_envelope(
        KEY, event_type=event_type, event_id="0193-evt", payload=payload, issued_at=issued_at, nonce=new_nonce()
    )

    received = GoStyleNode(KEY.public_key(), now=issued_at + age).receive(_frame(envelope))

    assert received["payload"] == payload
    assert verify_envelope(KEY.public_key(), envelope_json(envelope))


@given(payload=_PAYLOADS, issued_at=st.datetimes(max_value=datetime(9999, 1, 1), timezones=st.just(UTC)))
def test_the_one_pass_data_line_is_the_two_step_one_byte_for_byte(payload: dict[str, Any], issued_at: datetime) -> None:
    """What the relay and the Lambda path send (payload encoded once) is what signing the
    envelope and then encoding it gives (Ed25519 signatures are deterministic)."""
    nonce = new_nonce()
    fields: dict[str, Any] = {"event_type": "action_request", "event_id": "0193-evt", "issued_at": issued_at}
    two_step = envelope_json(sign_envelope(KEY, payload=payload, nonce=nonce, **fields))
    assert signed_envelope_json(KEY, payload=payload, nonce=nonce, **fields) == two_step
