"""The node agent's side of the wire, as `plexd` (Go) speaks it: written from its sources
(internal/api: client.go, sse.go, envelope.go, verifier.go), independently of our own
library and simulator, so the conformance tests check the server against the client's
habits rather than against our reading of the spec.

- :class:`GoAgent`: ``internal/api``'s ``doRequest``: ``json.Marshal`` bodies (compact,
  HTML-escaped), gzip (default level) when longer than 1024 bytes with
  ``Content-Encoding: gzip``, ``Accept: application/json``, ``Accept-Encoding: gzip``,
  ``User-Agent: plexd/<version>``, ``Authorization: Bearer``; a gzipped answer is inflated
  by hand (the transport has ``DisableCompression``), an error body is read raw (4 KiB).
- :func:`read_sse`: the event stream request (``Accept: text/event-stream``,
  ``Cache-Control: no-cache``, ``Last-Event-ID``, no ``Accept-Encoding``) and its
  ``bufio.Scanner`` parser (64 KiB lines, ``strings.Cut`` on ``:``, one leading space
  trimmed, data lines joined by ``\\n``, comments ignored, a block without data dropped).
- :class:`GoVerifier`: the envelope check: re-marshal ``{event_type, event_id, issued_at,
  nonce, payload}`` as Go does (``issued_at`` through ``time.Time``, ``payload`` a
  ``json.RawMessage`` compacted and HTML-escaped), Ed25519 over those bytes, 5 minutes of
  freshness either way, nonces never reused.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

GZIP_THRESHOLD = 1024  # client.go: if len(data) > gzipThreshold
MAX_ERROR_BODY = 4096  # errors.go: io.LimitReader(resp.Body, 4096)
SCANNER_MAX_LINE = 64 * 1024  # bufio.MaxScanTokenSize
MAX_AGE = timedelta(minutes=5)


def go_marshal(value: Any) -> bytes:
    """``json.Marshal`` of a value made of maps (in field order), strings, numbers, bools."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return go_html_escape(text).encode()


def go_html_escape(text: str) -> str:
    for raw, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, escaped)
    return text


def agent_ack(execution_id: str) -> dict[str, Any]:
    """``ExecutionAck`` as sent right after an ``action_request`` (``reason`` has no omitempty)."""
    return {"execution_id": execution_id, "status": "accepted", "reason": ""}


def agent_result(execution_id: str, stdout: str, *, status: str = "success", exit_code: int = 0) -> dict[str, Any]:
    """``ExecutionResult``: a Go duration, ``finished_at`` as ``time.Now().UTC()`` marshals
    (nanoseconds, ``Z``), ``triggered_by`` echoed with every field (no omitempty)."""
    return {
        "execution_id": execution_id,
        "status": status,
        "exit_code": exit_code,
        "stdout": stdout,
        "stderr": "",
        "duration": "2.345678s",
        "finished_at": "2026-12-02T10:30:02.123456789Z",
        "triggered_by": {"type": "control_plane", "session_id": "", "user_id": "", "email": ""},
    }


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    raw: bytes  # on the wire
    body: bytes  # inflated when the answer was gzipped (what the agent decodes)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class GoAgent:
    server: str
    version: str = "dev"
    sent: list[dict[str, str]] = field(default_factory=list)  # the headers of every request made

    def _connection(self) -> http.client.HTTPConnection:
        parts = urlsplit(self.server)
        return http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)

    def request(self, method: str, path: str, body: Any = None, *, token: str | None = None) -> Reply:
        """``doRequest``: ``body`` None is no body at all (deregister), else JSON."""
        headers = {"Accept": "application/json", "Accept-Encoding": "gzip", "User-Agent": f"plexd/{self.version}"}
        data = b""
        if body is not None:
            data = go_marshal(body)
            headers["Content-Type"] = "application/json"
            if len(data) > GZIP_THRESHOLD:
                data = gzip.compress(data, 6)
                headers["Content-Encoding"] = "gzip"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        connection = self._connection()
        try:
            # Go sends no Accept-Encoding of its own and a Content-Length only with a body.
            connection.putrequest(method, path, skip_accept_encoding=True)
            for name, value in headers.items():
                connection.putheader(name, value)
            if data:
                connection.putheader("Content-Length", str(len(data)))
            connection.endheaders(data or None)
            response = connection.getresponse()
            raw = response.read()
            answer_headers = {k.lower(): v for k, v in response.getheaders()}
        finally:
            connection.close()
        self.sent.append(headers)
        body_bytes = raw
        if answer_headers.get("content-encoding", "").lower() == "gzip":
            body_bytes = gzip.decompress(raw)
        if not 200 <= response.status < 300:
            body_bytes = raw[:MAX_ERROR_BODY]  # errorFromResponse: raw, not inflated
        return Reply(response.status, answer_headers, raw, body_bytes)


@dataclass
class SseEvent:
    event: str
    data: str
    id: str


@dataclass
class SseRead:
    status: int
    headers: dict[str, str]
    events: list[SseEvent]
    comments: list[str]
    last_event_id: str
    longest_line: int


def read_sse(agent: GoAgent, node_id: str, token: str, last_event_id: str = "") -> SseRead:
    """One stream request, read to its clean end as ``sse.go`` reads it."""
    connection = agent._connection()
    try:
        connection.putrequest("GET", f"/v1/nodes/{node_id}/events", skip_accept_encoding=True)
        headers = {
            "Accept": "text/event-stream",
            "Cache-Control": "no-cache",
            "Authorization": f"Bearer {token}",
            "User-Agent": f"plexd/{agent.version}",
        }
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        raw = response.read()
        answer_headers = {k.lower(): v for k, v in response.getheaders()}
    finally:
        connection.close()
    if not 200 <= response.status < 300:
        return SseRead(response.status, answer_headers, [], [], last_event_id, 0)
    return parse_sse(response.status, answer_headers, raw, last_event_id)


def parse_sse(status: int, headers: dict[str, str], raw: bytes, last_event_id: str) -> SseRead:
    """``sse.go``'s parse loop over a whole response body."""
    events: list[SseEvent] = []
    comments: list[str] = []
    data: list[str] = []
    event_type, event_id = "", ""
    lines = _scan_lines(raw)
    longest = max((len(line) for line in lines), default=0)
    assert longest <= SCANNER_MAX_LINE, "the agent's scanner stops at a line over 64 KiB"
    for line in lines:
        if not line:
            if data:
                events.append(SseEvent(event_type or "message", "\n".join(data), event_id))
            data, event_type = [], ""
        elif line.startswith(":"):
            comments.append(line[1:].strip())
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            elif name == "event":
                event_type = value
            elif name == "id":
                event_id = last_event_id = value
    return SseRead(status, headers, events, comments, last_event_id, longest)


def _scan_lines(raw: bytes) -> list[str]:
    """``bufio.ScanLines``: split on ``\\n``, drop one trailing ``\\r``; a last line without
    its newline still counts."""
    lines = raw.decode().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


class EnvelopeRefused(Exception):
    pass


_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$")


@dataclass
class GoVerifier:
    public_keys: list[str]
    seen_nonces: set[str] = field(default_factory=set)

    def verify(self, data: str, *, now: datetime | None = None) -> dict[str, Any]:
        """The payload of a verified envelope, or :class:`EnvelopeRefused`."""
        members = raw_members(data)
        for name in ("event_type", "event_id", "issued_at", "nonce", "payload", "signature"):
            if name not in members:
                raise EnvelopeRefused(f"missing {name}")
        event_type, event_id = json.loads(members["event_type"]), json.loads(members["event_id"])
        nonce, signature = json.loads(members["nonce"]), json.loads(members["signature"])
        issued_text = json.loads(members["issued_at"])
        if not (event_type and event_id and nonce and signature):
            raise EnvelopeRefused("empty field")
        issued_at = _parse_time(issued_text)
        canonical = (
            '{"event_type":' + go_html_escape(json.dumps(event_type, ensure_ascii=False))
            + ',"event_id":' + go_html_escape(json.dumps(event_id, ensure_ascii=False))
            + ',"issued_at":"' + _format_rfc3339nano(issued_text) + '"'
            + ',"nonce":' + go_html_escape(json.dumps(nonce, ensure_ascii=False))
            + ',"payload":' + go_html_escape(_compact(members["payload"]))
            + "}"
        ).encode()  # fmt: skip
        signature_bytes = base64.b64decode(signature, validate=True)
        if not any(self._verifies(key, signature_bytes, canonical) for key in self.public_keys):
            raise EnvelopeRefused("signature does not verify over the Go-canonical bytes")
        moment = now or datetime.now(UTC)
        if moment - issued_at > MAX_AGE or issued_at > moment + MAX_AGE:
            raise EnvelopeRefused("stale or future issued_at")
        if nonce in self.seen_nonces:
            raise EnvelopeRefused("nonce replayed")
        self.seen_nonces.add(nonce)
        payload: dict[str, Any] = json.loads(members["payload"])
        return payload

    @staticmethod
    def _verifies(key: str, signature: bytes, message: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(base64.b64decode(key)).verify(signature, message)
        except InvalidSignature:
            return False
        return True


def raw_members(text: str) -> dict[str, str]:
    """A JSON object's members as their raw text (what ``json.RawMessage`` keeps)."""
    decoder = json.JSONDecoder()
    position = _skip(text, 0)
    assert text[position] == "{"
    position = _skip(text, position + 1)
    members: dict[str, str] = {}
    while text[position] != "}":
        key, position = decoder.raw_decode(text, position)
        position = _skip(text, position)
        assert text[position] == ":"
        position = _skip(text, position + 1)
        _, end = decoder.raw_decode(text, position)
        members[key] = text[position:end]
        position = _skip(text, end)
        if text[position] == ",":
            position = _skip(text, position + 1)
    return members


def _skip(text: str, position: int) -> int:
    while text[position] in " \t\r\n":
        position += 1
    return position


def _compact(raw: str) -> str:
    """``json.Compact``: insignificant whitespace out, everything else byte for byte."""
    out, in_string, escaped = [], False, False
    for char in raw:
        if in_string:
            out.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
            out.append(char)
        elif char not in " \t\r\n":
            out.append(char)
    return "".join(out)


def _parse_time(text: str) -> datetime:
    match = _RFC3339.match(text)
    if not match:
        raise EnvelopeRefused(f"issued_at {text!r} is not RFC 3339")
    moment = datetime.fromisoformat(match.group(1) + ("+00:00" if match.group(3) == "Z" else match.group(3)))
    fraction = (match.group(2) or "").ljust(6, "0")[:6]
    return moment.replace(microsecond=int(fraction)).astimezone(UTC)


def _format_rfc3339nano(text: str) -> str:
    """``time.Time.MarshalJSON``: RFC3339Nano, trailing fraction zeros trimmed, ``Z`` for UTC."""
    match = _RFC3339.match(text)
    assert match
    fraction = (match.group(2) or "").rstrip("0")
    zone = "Z" if match.group(3) in ("Z", "+00:00", "-00:00") else match.group(3)
    return match.group(1) + (f".{fraction}" if fraction else "") + zone
