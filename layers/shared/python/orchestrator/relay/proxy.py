"""The relay's forwarding of every request it does not serve itself to the REST API, unchanged.

Up: the method; the path as the client sent it (its percent-encoding and query string as they
were) under the upstream's own path (API Gateway's stage, e.g. ``/prod``); every end-to-end
header; the body's raw bytes (a gzip body stays gzip with its ``Content-Encoding``). Dropped:
the hop-by-hop headers (and any a ``Connection`` header names), ``Host`` (the upstream's is
sent), ``Expect`` (the body is already read) and ``Content-Length`` (recounted, same value).
Added: the peer appended to ``X-Forwarded-For``, and ``X-Forwarded-Proto``.

Down: the upstream's status, every end-to-end header (repeated ones repeated, e.g. several
``Set-Cookie`` or ``Link``), its raw body bytes (a gzip answer stays gzip) and a correct
``Content-Length``; nothing added but ``Date`` when the upstream sent none (what a proxy must
do), no ``Content-Type`` or ``Server`` of aiohttp's own.

The relay's own answers are Problem+JSON: 502 ``upstream_unavailable`` (no connection to the
upstream, or it broke off), 504 ``upstream_timeout`` (no whole answer in ``timeout_seconds``),
413 ``request_body_too_large`` past :data:`MAX_BODY_BYTES`, 400 ``invalid_body`` for a body
that ends before its declared length. Never a 500.

The server that mounts :meth:`Forwarder.forward` must not inflate request bodies itself::

    runner = web.AppRunner(app, auto_decompress=False)

(aiohttp's server otherwise inflates a gzip body and the upstream gets plain bytes labelled
gzip). The body is read from ``request.content`` under :data:`MAX_BODY_BYTES`, so the
``Application``'s ``client_max_size`` does not bound it.
"""

from __future__ import annotations

import io
import json
import logging
import re
import uuid
from typing import Final

import aiohttp
from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import CIMultiDict, CIMultiDictProxy, istr
from yarl import URL

from orchestrator.errors import InvalidBody, OrchestratorError, RequestBodyTooLarge
from orchestrator.http.problem import PROBLEM_CONTENT_TYPE, problem_document

logger = logging.getLogger(__name__)

MAX_BODY_BYTES: Final = 11 * 1024 * 1024
"""API Gateway refuses a body over 10 MiB in its own words (413 ``request_body_too_large``);
bodies up to this size are passed on so that it does. A bigger one is refused here, in the
same words, without being held."""

READ_CHUNK_BYTES: Final = 64 * 1024
LARGE_BODY_BYTES: Final = 1024 * 1024

HOP_BY_HOP: Final = frozenset(
    istr(name)
    for name in (
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Proxy-Connection",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
    )
)
NOT_FORWARDED_UP: Final = HOP_BY_HOP | {
    hdrs.HOST,
    hdrs.CONTENT_LENGTH,
    hdrs.EXPECT,
    hdrs.X_FORWARDED_FOR,
    hdrs.X_FORWARDED_PROTO,
}
# aiohttp's client would otherwise add these when the client sent none.
NO_AUTO_HEADERS: Final = (hdrs.ACCEPT, hdrs.ACCEPT_ENCODING, hdrs.USER_AGENT, hdrs.CONTENT_TYPE)

CORRELATION_ID: Final = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
"""A caller's ``X-Correlation-Id`` kept on the relay's own answers: the API's rule
(:data:`orchestrator.http.api.CORRELATION_ID`, not imported: it brings the resolver)."""


class UpstreamUnavailable(OrchestratorError):
    """No connection to the REST API, or it broke off before a whole answer."""

    status, code, title = 502, "upstream_unavailable", "Upstream unavailable"


class UpstreamTimeout(OrchestratorError):
    """The REST API gave no whole answer in time."""

    status, code, title = 504, "upstream_timeout", "Upstream timeout"


class Forwarder:
    """Forwards a request to ``upstream`` (base URL, e.g. https://abc.execute-api.../prod or
    http://127.0.0.1:3000) as is.

    ``forwarded_proto`` is the ``X-Forwarded-Proto`` sent up; by default the scheme the
    relay was reached by (``http`` behind a load balancer that ends TLS: pass ``https`` there).
    """

    def __init__(
        self,
        upstream: str,
        *,
        timeout_seconds: float = 35.0,
        max_connections: int = 256,
        forwarded_proto: str | None = None,
    ) -> None:
        parsed = URL(upstream, encoded=True)
        if parsed.scheme not in {"http", "https"} or not parsed.host or parsed.raw_query_string or parsed.fragment:
            raise ValueError(f"the upstream must be an http(s) base URL without query or fragment: {upstream!r}")
        self.upstream = upstream.rstrip("/")
        self.timeout_seconds = timeout_seconds
        self.max_connections = max_connections
        self.forwarded_proto = forwarded_proto
        self.forwarded = 0
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the connection pool (keep-alive) to the upstream; call inside the running loop."""
        if self._session is not None:
            return
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.max_connections, limit_per_host=self.max_connections),
            timeout=aiohttp.ClientTimeout(total=self.timeout_seconds),
            auto_decompress=False,  # a gzip answer goes back as it came
            cookie_jar=aiohttp.DummyCookieJar(),  # one client's cookies are never another's
            skip_auto_headers=NO_AUTO_HEADERS,
            raise_for_status=False,
        )

    async def close(self) -> None:
        """Close the pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def forward(self, request: web.Request) -> web.StreamResponse:
        """Send ``request`` to the upstream and answer what it answered (see the module)."""
        self.forwarded += 1
        if self._session is None:
            raise RuntimeError("Forwarder.start() was not awaited")
        try:
            body = await _read_body(request)
        except OrchestratorError as refused:
            return self._problem(request, refused)
        try:
            async with self._session.request(
                request.method,
                URL(self.upstream + _target(request), encoded=True),
                headers=self._headers_up(request),
                data=_payload(body),
                allow_redirects=False,
            ) as answer:
                return _Relayed(request.method, answer.status, answer.headers, await answer.read())
        except (TimeoutError, aiohttp.ClientError) as error:
            return self._failed(request, error)

    def _headers_up(self, request: web.Request) -> CIMultiDict[str]:
        dropped = NOT_FORWARDED_UP | _named_by_connection(request.headers)
        headers: CIMultiDict[str] = CIMultiDict(
            (name, value)
            for name, value in request.headers.items()
            if name not in dropped and not name.lower().startswith("proxy-")
        )
        chain = [*request.headers.getall(hdrs.X_FORWARDED_FOR, [])]
        if request.remote:
            chain.append(request.remote)
        if chain:
            headers[hdrs.X_FORWARDED_FOR] = ", ".join(chain)
        headers[hdrs.X_FORWARDED_PROTO] = self.forwarded_proto or request.scheme
        return headers

    def _failed(self, request: web.Request, error: TimeoutError | aiohttp.ClientError) -> web.Response:
        problem: OrchestratorError
        if isinstance(error, TimeoutError) and not isinstance(error, aiohttp.ConnectionTimeoutError):
            problem = UpstreamTimeout("The API did not answer in time.")
        else:  # refused, unresolvable, no connection in time, or broken off
            problem = UpstreamUnavailable("The API could not be reached.")
        logger.warning(
            "upstream request failed",
            extra={
                "method": request.method,
                "path": request.path,
                "status": problem.status,
                "error": type(error).__name__,
                "reason": str(error),
            },
        )
        return self._problem(request, problem)

    @staticmethod
    def _problem(request: web.Request, error: OrchestratorError) -> web.Response:
        supplied = request.headers.get("X-Correlation-Id", "")
        correlation_id = supplied if CORRELATION_ID.fullmatch(supplied) else str(uuid.uuid4())
        document = problem_document(
            status=error.status,
            code=error.problem_code,
            title=error.title,
            detail=error.detail,
            instance=_target(request).partition("?")[0],
            correlation_id=correlation_id,
            extensions=error.extensions,
        )
        return web.Response(
            body=json.dumps(document, separators=(",", ":")).encode(),
            status=error.status,
            content_type=PROBLEM_CONTENT_TYPE,
            headers={"X-Correlation-Id": correlation_id},
        )


class _Relayed(web.Response):
    """An upstream answer as it came. aiohttp's server adds ``Content-Type:
    application/octet-stream`` to a body without one and its own ``Server``; a relayed answer
    carries neither unless the upstream sent it."""

    def __init__(self, method: str, status: int, upstream: CIMultiDictProxy[str], body: bytes) -> None:
        dropped = HOP_BY_HOP | _named_by_connection(upstream)
        if method != hdrs.METH_HEAD:
            dropped |= {hdrs.CONTENT_LENGTH}  # recounted from the body (a HEAD answer has none to count)
        headers: CIMultiDict[str] = CIMultiDict(
            (name, value)
            for name, value in upstream.items()
            if name not in dropped and not name.lower().startswith("proxy-")
        )
        self._own = {name for name in (hdrs.CONTENT_TYPE, hdrs.SERVER) if name not in headers}
        super().__init__(status=status, headers=headers, body=body)

    async def _prepare_headers(self) -> None:
        await super()._prepare_headers()
        for name in self._own:
            self.headers.popall(name, None)


async def _read_body(request: web.Request) -> bytes:
    """The body's bytes as sent (the server does not inflate them), at most MAX_BODY_BYTES."""
    declared = request.content_length
    if declared is not None and declared > MAX_BODY_BYTES:
        raise RequestBodyTooLarge("The request body exceeds the limit.")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.content.iter_chunked(READ_CHUNK_BYTES):
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise RequestBodyTooLarge("The request body exceeds the limit.")
            chunks.append(chunk)
    except (HttpProcessingError, ConnectionError) as error:
        # The body ended before its declared length: the client has gone.
        raise InvalidBody("The request body ended before its declared length.") from error
    return b"".join(chunks)


def _payload(body: bytes) -> bytes | io.BytesIO | None:
    """What the client session sends: nothing for no body (a POST still says ``Content-Length:
    0``), a big body in chunks that yield to the loop (as aiohttp asks past 1 MiB)."""
    if not body:
        return None
    return io.BytesIO(body) if len(body) > LARGE_BODY_BYTES else body


def _target(request: web.Request) -> str:
    """The request target as sent: path and query, percent-encoding untouched (the path part
    of an absolute-form target)."""
    raw = request.raw_path
    return raw if raw.startswith("/") else request.rel_url.raw_path_qs


def _named_by_connection(headers: CIMultiDictProxy[str]) -> set[istr]:
    return {
        istr(token.strip())
        for value in headers.getall(hdrs.CONNECTION, [])
        for token in value.split(",")
        if token.strip()
    }
