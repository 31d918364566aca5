"""Event verification as a ``plexd`` agent does it (SPEC §11).

The signature check is the control plane's own
:func:`orchestrator.events.envelope.verify_envelope` (Go re-marshalling rules);
on top of it this module keeps what only a receiver can: envelopes issued more
than five minutes ago (or as far ahead, a clock that runs wild) are refused,
and so is a nonce seen before. Nonces are remembered only while their
envelope could still pass the age check; after that the age check refuses a
replay on its own.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from orchestrator.events.envelope import ENVELOPE_FIELDS, parse_envelope, verify_envelope

MAX_AGE = timedelta(minutes=5)

RejectReason = Literal["malformed", "bad_signature", "bad_timestamp", "stale", "from_future", "nonce_reused"]

_RFC3339 = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt](?P<time>\d{2}:\d{2}:\d{2})(?:\.(?P<fraction>\d{1,9}))?"
    r"(?P<zone>[Zz]|[+-]\d{2}:\d{2})"
)


class EnvelopeRejected(Exception):
    """An event a ``plexd`` verifier would drop, and why."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: RejectReason = reason
        self.detail = detail


@dataclass(frozen=True)
class VerifiedEvent:
    """The signed part of an envelope that passed every check."""

    event_type: str
    event_id: str
    issued_at: datetime
    nonce: str
    payload: dict[str, Any]


def load_public_key(text: str) -> Ed25519PublicKey:
    """The ``signing_public_key`` of registration (standard base64 of the raw 32-byte key)."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ValueError("signing key is not base64") from error
    return Ed25519PublicKey.from_public_bytes(raw)


def parse_timestamp(text: str) -> datetime:
    """RFC 3339 (Go's ``time.Time`` JSON form, up to nanoseconds) as an aware UTC datetime."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    fraction = (match["fraction"] or "").ljust(6, "0")[:6]
    zone = "+00:00" if match["zone"] in ("Z", "z") else match["zone"]
    return datetime.fromisoformat(f"{match['date']}T{match['time']}.{fraction}{zone}").astimezone(UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


class EnvelopeVerifier:
    """One node's verifier: its trusted signing keys and the nonces it has seen.

    ``verify`` checks, in this order, so that a forgery can never use up a
    nonce: the envelope's shape, the Ed25519 signature under any trusted key
    (current first, then the previous one during a rotation), the age of
    ``issued_at``, and nonce reuse. Thread-safe.
    """

    def __init__(
        self,
        public_keys: Iterable[Ed25519PublicKey | str],
        *,
        max_age: timedelta = MAX_AGE,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._lock = threading.Lock()
        self._keys: list[Ed25519PublicKey] = []
        self._max_age = max_age
        self._clock = clock
        self._seen: set[str] = set()
        self._forget: list[tuple[datetime, str]] = []  # (when the nonce can be forgotten, nonce)
        self.set_keys(public_keys)

    def set_keys(self, public_keys: Iterable[Ed25519PublicKey | str]) -> None:
        """Replace the trusted keys (e.g. from ``state.signing_keys`` after a rotation)."""
        keys = [load_public_key(key) if isinstance(key, str) else key for key in public_keys]
        if not keys:
            raise ValueError("a verifier needs at least one signing key")
        with self._lock:
            self._keys = keys

    def trusted_keys(self) -> list[str]:
        """The trusted keys, as registration and ``state.signing_keys`` spell them (standard
        base64 of the raw 32-byte key)."""
        with self._lock:
            keys = list(self._keys)
        return [base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode("ascii") for key in keys]

    def verify(self, envelope: str | Mapping[str, Any]) -> VerifiedEvent:
        """The verified event, or :class:`EnvelopeRejected`."""
        parsed = self._parse(envelope)
        with self._lock:
            keys = list(self._keys)
        if not any(verify_envelope(key, parsed) for key in keys):
            raise EnvelopeRejected("bad_signature", "no trusted key verifies the signature")
        try:
            issued_at = parse_timestamp(parsed["issued_at"])
        except ValueError as error:
            raise EnvelopeRejected("bad_timestamp", str(error)) from error
        now = self._clock()
        if now - issued_at > self._max_age:
            raise EnvelopeRejected("stale", f"issued at {parsed['issued_at']}, more than {self._max_age} ago")
        if issued_at - now > self._max_age:
            raise EnvelopeRejected("from_future", f"issued at {parsed['issued_at']}, more than {self._max_age} ahead")
        self._use_nonce(parsed["nonce"], issued_at, now)
        return VerifiedEvent(
            event_type=parsed["event_type"],
            event_id=parsed["event_id"],
            issued_at=issued_at,
            nonce=parsed["nonce"],
            payload=dict(parsed["payload"]),
        )

    @staticmethod
    def _parse(envelope: str | Mapping[str, Any]) -> dict[str, Any]:
        if isinstance(envelope, Mapping):
            parsed = dict(envelope)
        else:
            try:
                parsed = parse_envelope(envelope)
            except ValueError as error:
                raise EnvelopeRejected("malformed", str(error)) from error
        missing = [name for name in ENVELOPE_FIELDS if name not in parsed]
        if missing:
            raise EnvelopeRejected("malformed", f"missing {', '.join(missing)}")
        if not all(isinstance(parsed[name], str) for name in ENVELOPE_FIELDS if name != "payload"):
            raise EnvelopeRejected("malformed", "envelope fields must be strings")
        if not isinstance(parsed["payload"], Mapping):
            raise EnvelopeRejected("malformed", "payload must be an object")
        return parsed

    def _use_nonce(self, nonce: str, issued_at: datetime, now: datetime) -> None:
        with self._lock:
            while self._forget and self._forget[0][0] < now:
                self._seen.discard(heapq.heappop(self._forget)[1])
            if nonce in self._seen:
                raise EnvelopeRejected("nonce_reused", f"nonce {nonce!r} was seen before")
            self._seen.add(nonce)
            heapq.heappush(self._forget, (issued_at + self._max_age, nonce))
