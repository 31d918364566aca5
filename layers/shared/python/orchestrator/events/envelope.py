"""Signed event envelopes and their SSE framing (SPEC §11).

Nodes verify events with Go: they decode the ``data:`` JSON and *re-marshal*
the signed part with ``encoding/json`` before checking the Ed25519 signature.
A signature is therefore only good if we sign exactly the bytes Go will
produce, so this module carries its own encoder that follows Go (1.22+)
byte for byte instead of relying on :func:`json.dumps`, which differs in
escaping (``<``, ``>``, ``&``, U+2028/U+2029, ``\\u`` for non-ASCII), float
formatting (``1e-07`` vs Go's ``1e-7``, ``1e+20`` vs ``100000000000000000000``)
and key order (Go sorts map keys by their UTF-8 bytes).

The signed object is a Go *struct*, so its fields keep their declared order
``event_type, event_id, issued_at, nonce, payload``; only ``payload`` (a
``map[string]any`` on the Go side) has its keys sorted, recursively.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import math
import re
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypedDict

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGNED_FIELDS: tuple[str, ...] = ("event_type", "event_id", "issued_at", "nonce", "payload")
"""The Go verifier's struct fields, in declaration order: the order they are signed in."""

ENVELOPE_FIELDS: tuple[str, ...] = (*SIGNED_FIELDS, "signature")

MAX_SAFE_INTEGER = 2**53
"""Go verifiers decode numbers into ``float64``; most larger integers would come back changed."""


class Envelope(TypedDict):
    """What goes on the ``data:`` line of one SSE message."""

    event_type: str
    event_id: str
    issued_at: str
    nonce: str
    payload: dict[str, Any]
    signature: str


# Go's encodeState.string with escapeHTML: short forms for the five C0 controls
# that have one (\b and \f since Go 1.22), \u00XX in lowercase hex for the
# rest, and \u escapes for the characters that are unsafe inside HTML/JS.
_STRING_ESCAPES: dict[int, str] = {code: f"\\u{code:04x}" for code in range(0x20)}
_STRING_ESCAPES.update(
    {
        ord('"'): '\\"',
        ord("\\"): "\\\\",
        ord("\b"): "\\b",
        ord("\f"): "\\f",
        ord("\n"): "\\n",
        ord("\r"): "\\r",
        ord("\t"): "\\t",
        ord("<"): "\\u003c",
        ord(">"): "\\u003e",
        ord("&"): "\\u0026",
        0x2028: "\\u2028",
        0x2029: "\\u2029",
    }
)
# What :func:`_go_string` must escape or refuse: most strings (ids, names, times) hold none of
# it and are quoted as they are.
_NEEDS_WORK = re.compile('[\x00-\x1f"\\\\<>&\u2028\u2029\ud800-\udfff]')


def go_json(value: object) -> str:
    """Compact JSON exactly as Go's ``encoding/json`` marshals the decoded value.

    Objects are treated as Go maps (keys sorted by UTF-8 bytes). Raises
    :class:`ValueError` for what Go cannot round-trip identically (NaN,
    infinities, integers a float64 cannot hold as written, lone surrogates) and
    :class:`TypeError` for values JSON has no form for.
    """
    out: list[str] = []
    _encode(value, out)
    return "".join(out)


def rfc3339_go(moment: datetime) -> str:
    """``moment`` as Go's ``time.RFC3339Nano`` prints a UTC time.

    Go verifiers that hold ``issued_at`` as ``time.Time`` re-marshal it this
    way: ``Z`` suffix, trailing zeros of the fraction dropped, no fraction at
    all on a whole second.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("issued_at must be timezone-aware")
    utc = moment.astimezone(UTC)
    text = f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
    fraction = f"{utc.microsecond:06d}".rstrip("0")
    return f"{text}.{fraction}Z" if fraction else f"{text}Z"


def new_nonce() -> str:
    """16 random bytes, base64url without padding (22 characters)."""
    return secrets.token_urlsafe(16)


def sign_envelope(
    private_key: Ed25519PrivateKey,
    *,
    event_type: str,
    event_id: str,
    payload: Mapping[str, Any],
    issued_at: datetime,
    nonce: str,
) -> Envelope:
    """Build the envelope and sign what a Go verifier will re-marshal.

    ``signature`` is standard padded base64 of the Ed25519 signature over
    the UTF-8 bytes of ``{event_type, event_id, issued_at, nonce, payload}``
    in that order, encoded by :func:`go_json` rules. The payload is copied so
    later changes by the caller cannot invalidate the signature.
    """
    frozen: dict[str, Any] = copy.deepcopy(dict(payload))
    stamp = rfc3339_go(issued_at)
    message = _signed_bytes(event_type, event_id, stamp, nonce, frozen)
    return Envelope(
        event_type=event_type,
        event_id=event_id,
        issued_at=stamp,
        nonce=nonce,
        payload=frozen,
        signature=base64.b64encode(private_key.sign(message)).decode("ascii"),
    )


def signed_envelope_json(
    private_key: Ed25519PrivateKey,
    *,
    event_type: str,
    event_id: str,
    payload: Mapping[str, Any],
    issued_at: datetime,
    nonce: str,
) -> str:
    """``envelope_json(sign_envelope(...))`` with the payload encoded once: the envelope's
    first five fields are the signed message itself, so the ``data:`` line is that message with
    the signature appended (a relay signs every event of a fleet-wide dispatch)."""
    message = _signed_bytes(event_type, event_id, rfc3339_go(issued_at), nonce, payload)
    signature = base64.b64encode(private_key.sign(message)).decode("ascii")
    return message.decode("utf-8")[:-1] + ',"signature":' + _go_string(signature) + "}"


def envelope_json(envelope: Envelope) -> str:
    """The ``data:`` line: the envelope in field order, by the same Go rules."""
    return _encode_fields(
        [
            ("event_type", envelope["event_type"]),
            ("event_id", envelope["event_id"]),
            ("issued_at", envelope["issued_at"]),
            ("nonce", envelope["nonce"]),
            ("payload", envelope["payload"]),
            ("signature", envelope["signature"]),
        ]
    )


def parse_envelope(data: str) -> dict[str, Any]:
    """Decode a ``data:`` line the way a Go verifier does, as far as signing can tell.

    Differs from plain :func:`json.loads` where that would change the
    re-marshalled bytes: ``-0`` stays a negative zero (Go keeps it as a
    float64) and ``NaN``/``Infinity`` are refused. Raises :class:`ValueError`.
    """

    def number(literal: str) -> int | float:
        return -0.0 if literal == "-0" else int(literal)

    def no_constant(name: str) -> object:
        raise ValueError(f"{name} is not JSON")

    decoded = json.loads(data, parse_int=number, parse_constant=no_constant)
    if not isinstance(decoded, dict):
        raise ValueError("envelope must be a JSON object")
    return decoded


def verify_envelope(public_key: Ed25519PublicKey, envelope: Mapping[str, Any] | str) -> bool:
    """Whether ``envelope`` (a ``data:`` line, or :func:`parse_envelope` of one) carries a valid signature.

    Only the signature is checked; freshness (5 minutes) and nonce reuse are
    the receiver's state. Malformed envelopes are ``False``, never an error.
    """
    if isinstance(envelope, str):
        try:
            envelope = parse_envelope(envelope)
        except ValueError:
            return False
    if any(name not in envelope for name in ENVELOPE_FIELDS):
        return False
    event_type, event_id, issued_at, nonce, payload, signature_text = (envelope[name] for name in ENVELOPE_FIELDS)
    texts = (event_type, event_id, issued_at, nonce, signature_text)
    if not all(isinstance(text, str) for text in texts) or not isinstance(payload, Mapping):
        return False
    try:
        signature = base64.b64decode(signature_text, validate=True)
        message = _signed_bytes(event_type, event_id, issued_at, nonce, payload)
        public_key.verify(signature, message)
    except (binascii.Error, ValueError, TypeError, InvalidSignature):
        return False
    return True


def sse_message(event_id: str, event_type: str, data: str) -> str:
    """One SSE message. A line break in any field would split the frame, so it is refused."""
    for name, field in (("event_id", event_id), ("event_type", event_type), ("data", data)):
        if "\n" in field or "\r" in field:
            raise ValueError(f"SSE {name} must be a single line")
    return f"id: {event_id}\nevent: {event_type}\ndata: {data}\n\n"


def sse_retry(milliseconds: int) -> str:
    """The reconnection hint that ends a stream response."""
    if milliseconds < 0:
        raise ValueError("retry must not be negative")
    return f"retry: {milliseconds}\n\n"


def _signed_bytes(event_type: str, event_id: str, issued_at: str, nonce: str, payload: Mapping[str, Any]) -> bytes:
    values = (event_type, event_id, issued_at, nonce, payload)
    return _encode_fields(list(zip(SIGNED_FIELDS, values, strict=True))).encode("utf-8")


def _encode_fields(fields: Sequence[tuple[str, object]]) -> str:
    """A Go struct: fields in declaration order, not sorted."""
    out = ["{"]
    for index, (name, value) in enumerate(fields):
        if index:
            out.append(",")
        out.append(_go_string(name))
        out.append(":")
        _encode(value, out)
    out.append("}")
    return "".join(out)


def _encode(value: object, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif isinstance(value, bool):
        out.append("true" if value else "false")
    elif isinstance(value, int):
        out.append(_go_int(value))
    elif isinstance(value, float):
        out.append(_go_float(value))
    elif isinstance(value, str):
        out.append(_go_string(value))
    elif isinstance(value, Mapping):
        _encode_map(value, out)
    elif isinstance(value, list | tuple):
        _encode_list(value, out)
    else:
        raise TypeError(f"{type(value).__name__} has no JSON form")


def _encode_map(mapping: Mapping[Any, Any], out: list[str]) -> None:
    if not all(isinstance(key, str) for key in mapping):
        raise TypeError("object keys must be strings")
    # Go sorts map keys by their raw UTF-8 bytes, before escaping.
    items = sorted(mapping.items(), key=lambda item: item[0].encode("utf-8", "surrogatepass"))
    out.append("{")
    for index, (key, item) in enumerate(items):
        if index:
            out.append(",")
        out.append(_go_string(key))
        out.append(":")
        _encode(item, out)
    out.append("}")


def _encode_list(items: Sequence[Any], out: list[str]) -> None:
    out.append("[")
    for index, item in enumerate(items):
        if index:
            out.append(",")
        _encode(item, out)
    out.append("]")


def _go_string(text: str) -> str:
    if _NEEDS_WORK.search(text) is None:
        return '"' + text + '"'
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        # Go strings hold UTF-8; a lone surrogate has no faithful form there.
        raise ValueError("string contains a lone surrogate") from error
    return '"' + text.translate(_STRING_ESCAPES) + '"'


def _go_int(number: int) -> str:
    text = str(number)
    if abs(number) <= MAX_SAFE_INTEGER:
        return text
    # Beyond 2**53 only the integers Go itself writes for some float64 (e.g.
    # 1e20 as "100000000000000000000", which a parsed data line may hold)
    # come back unchanged from a float64 round trip.
    try:
        as_go = _go_float(float(number))
    except OverflowError:
        as_go = ""
    if as_go != text:
        raise ValueError(f"integer {number} would not survive a Go float64 round trip")
    return text


def _go_float(number: float) -> str:
    """Go's floatEncoder: ``strconv.AppendFloat(f, 'f' or 'e', -1, 64)``, then ``e-07`` → ``e-7``."""
    if not math.isfinite(number):
        raise ValueError(f"{number} has no JSON form")
    if number == 0:
        return "-0" if math.copysign(1.0, number) < 0 else "0"
    sign = "-" if number < 0 else ""
    digits, point = _shortest_digits(abs(number))
    magnitude = abs(number)
    if magnitude < 1e-6 or magnitude >= 1e21:
        return sign + _format_e(digits, point)
    return sign + _format_f(digits, point)


def _shortest_digits(magnitude: float) -> tuple[str, int]:
    """Shortest round-trip digits (as Go's ``-1`` precision) and the decimal exponent.

    The value is ``0.<digits> * 10**point``. ``repr`` yields the same shortest,
    closest digit string Go's strconv does.
    """
    mantissa, _, exponent = repr(magnitude).partition("e")
    whole, _, fraction = mantissa.partition(".")
    raw = whole + fraction
    point = len(whole) + (int(exponent) if exponent else 0)
    stripped = raw.lstrip("0")
    point -= len(raw) - len(stripped)
    return stripped.rstrip("0"), point


def _format_e(digits: str, point: int) -> str:
    exponent = point - 1
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    # strconv pads the exponent to two digits; encoding/json then drops the
    # zero of a negative one ("e-07" → "e-7").
    text = f"{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    if len(text) >= 4 and text[-4] == "e" and text[-3] == "-" and text[-2] == "0":
        text = text[:-2] + text[-1]
    return text


def _format_f(digits: str, point: int) -> str:
    if point <= 0:
        return "0." + "0" * -point + digits
    if point >= len(digits):
        return digits + "0" * (point - len(digits))
    return digits[:point] + "." + digits[point:]
