"""What a ``plexd`` agent puts on and reads off the wire, apart from HTTP itself.

- :class:`SseParser`: the WHATWG event-stream grammar, fed line by line, so it
  works on a long-lived stream as well as on the local server's short
  responses that end with a ``retry:`` hint.
- :func:`go_duration`: durations as Go's ``time.Duration.String`` prints them
  (``"2.34s"``, ``"1m30s"``, ``"500ms"``), which is what ``plexd`` sends.
- :func:`agent_body`: a request body as ``plexd`` sends it (compact, HTML-escaped JSON,
  gzipped when over 1 KiB) with its headers; :func:`go_json` is that JSON alone (floats as
  Go's ``strconv`` writes them), :func:`go_time` a ``time.Time`` as it marshals.
- Capability and heartbeat bodies in the seed's shapes.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

SIM_VERSION = "0.0.0-sim"
GZIP_ABOVE_BYTES = 1024  # plexd: len(body) > 1024 is sent gzipped
SIM_BINARY_CHECKSUM = "sha256:" + hashlib.sha256(b"plexd-sim " + SIM_VERSION.encode()).hexdigest()


@dataclass(frozen=True)
class SseMessage:
    """One dispatched SSE message. ``id`` is this message's own ``id:`` field, if it had one."""

    event: str
    data: str
    id: str | None


class SseParser:
    """Incremental ``text/event-stream`` parser (the HTML Living Standard's rules).

    Feed it lines without their terminators; a blank line dispatches the
    message being built. ``last_event_id`` and ``retry_ms`` persist across
    messages, as a browser's ``EventSource`` keeps them.
    """

    def __init__(self, last_event_id: str | None = None) -> None:
        self.last_event_id = last_event_id
        self.retry_ms: int | None = None
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None

    def feed_line(self, line: str) -> SseMessage | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
            self.last_event_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry_ms = int(value)
        return None

    def _dispatch(self) -> SseMessage | None:
        data, event, message_id = self._data, self._event, self._id
        self._data, self._event, self._id = [], "", None
        if not data:
            return None
        return SseMessage(event=event or "message", data="\n".join(data), id=message_id)


def agent_body(value: Any, headers: Mapping[str, str]) -> dict[str, Any]:
    """``httpx`` request arguments for ``value`` as plexd's client sends a body: Go's
    ``json.Marshal`` (:func:`go_json`), gzipped at the default level with
    ``Content-Encoding: gzip`` when over 1 KiB, ``Accept-Encoding: gzip``."""
    data = go_json(value)
    sent = {**headers, "Content-Type": "application/json", "Accept": "application/json", "Accept-Encoding": "gzip"}
    if len(data) > GZIP_ABOVE_BYTES:
        data = gzip.compress(data, 6)
        sent["Content-Encoding"] = "gzip"
    return {"content": data, "headers": sent}


_HTML_ESCAPES = (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))


def go_json(value: Any) -> bytes:
    """``value`` (maps in field order, lists, strings, ints, floats, bools, ``None``) as Go's
    ``json.Marshal`` writes it: compact; ``<``, ``>``, ``&``, U+2028 and U+2029 escaped (also
    inside a ``json.RawMessage``); a float in its shortest form without a needless ``.0``
    (``100``, ``23.5``, ``1e-7``, ``1e+21``), as ``strconv.FormatFloat(f, 'f'|'e', -1, 64)``."""
    text = "".join(_go_parts(value))
    for raw, escaped in _HTML_ESCAPES:
        text = text.replace(raw, escaped)
    return text.encode()


def _go_parts(value: Any) -> Any:
    if isinstance(value, float):
        yield go_float(value)
    elif isinstance(value, Mapping):
        yield "{"
        for index, (key, item) in enumerate(value.items()):
            yield ("," if index else "") + json.dumps(str(key), ensure_ascii=False) + ":"
            yield from _go_parts(item)
        yield "}"
    elif isinstance(value, list | tuple):
        yield "["
        for index, item in enumerate(value):
            if index:
                yield ","
            yield from _go_parts(item)
        yield "]"
    else:
        yield json.dumps(value, ensure_ascii=False)


def go_float(number: float) -> str:
    """A float64 as ``encoding/json`` writes it (``NaN`` and infinities are not JSON)."""
    if math.isnan(number) or math.isinf(number):
        raise ValueError(f"json: unsupported value: {number}")
    if number == 0:
        return "-0" if math.copysign(1.0, number) < 0 else "0"
    digits = Decimal(repr(number)).normalize()
    if abs(number) < 1e-6 or abs(number) >= 1e21:
        return f"{digits:e}"
    return f"{digits:f}"


def go_time(unix_nanos: int) -> str:
    """A UTC ``time.Time`` of ``unix_nanos`` as ``encoding/json`` writes it (RFC 3339 with up
    to nine fraction digits, trailing zeros dropped, ``Z``)."""
    seconds, nanos = divmod(unix_nanos, 1_000_000_000)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{nanos:09d}".rstrip("0")
    return f"{text}.{fraction}Z" if fraction else f"{text}Z"


def go_duration(seconds: float) -> str:
    """``seconds`` (rounded to the millisecond) as Go's ``time.Duration.String``."""
    nanos = round(seconds * 1000) * 1_000_000
    if nanos == 0:
        return "0s"
    sign, nanos = ("-", -nanos) if nanos < 0 else ("", nanos)
    if nanos < 1_000_000_000:
        return f"{sign}{_decimal(nanos, 6)}ms"
    hours, rest = divmod(nanos, 3600 * 1_000_000_000)
    minutes, rest = divmod(rest, 60 * 1_000_000_000)
    text = f"{hours}h" if hours else ""
    text += f"{minutes}m" if hours or minutes else ""
    return f"{sign}{text}{_decimal(rest, 9)}s"


def _decimal(value: int, places: int) -> str:
    whole, fraction = divmod(value, 10**places)
    digits = f"{fraction:0{places}d}".rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)


def builtin_action(spec: str | Mapping[str, Any]) -> dict[str, Any]:
    """A ``builtin_actions[]`` entry; a bare name gets no parameters."""
    if isinstance(spec, str):
        return {"name": spec, "description": f"{spec} (simulated)", "parameters": []}
    return dict(spec)


def hook(spec: str | Mapping[str, Any]) -> dict[str, Any]:
    """A ``hooks[]`` entry; a bare name gets a checksum derived from the name,
    so every simulated node reports the same one (a consistent baseline)."""
    if isinstance(spec, str):
        digest = hashlib.sha256(f"plexd-sim hook {spec}".encode()).hexdigest()
        return {
            "name": spec,
            "description": f"{spec} (simulated)",
            "source": "script",
            "checksum": f"sha256:{digest}",
            "parameters": [],
            "timeout": "300s",
            "sandbox": "namespaced",
        }
    return dict(spec)


def capabilities(
    builtin_actions: Sequence[str | Mapping[str, Any]], hooks: Sequence[str | Mapping[str, Any]]
) -> dict[str, Any]:
    """The ``capabilities`` object of ``POST /v1/register`` and ``PUT .../capabilities``."""
    return {
        "binary": {"version": SIM_VERSION, "checksum": SIM_BINARY_CHECKSUM},
        "builtin_actions": [builtin_action(spec) for spec in builtin_actions],
        "hooks": [hook(spec) for spec in hooks],
    }


def heartbeat_body(
    node_id: str,
    timestamp: str,
    uptime_seconds: float,
    *,
    peer_count: int = 0,
    nat: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The seed's heartbeat: the mesh's peer count and, once known, the NAT binding
    (``{public_endpoint, type}``)."""
    body: dict[str, Any] = {
        "node_id": node_id,
        "timestamp": timestamp,
        "status": "healthy",
        "uptime": go_duration(int(uptime_seconds)),
        "binary_checksum": SIM_BINARY_CHECKSUM,
        "mesh": {"interface": "plexd0", "peer_count": peer_count, "listen_port": 51820},
    }
    if nat is not None:
        body["nat"] = dict(nat)
    return body
