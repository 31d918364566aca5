"""The relay's forwarding to the REST API (issue 17): every request it does not serve itself goes
up unchanged and its answer comes back unchanged, byte for byte, as the real clients need it
(SPEC §17: gzip bodies both ways, raw paths, every end-to-end header).

A real upstream (an aiohttp echo app, and a raw TCP server for answers aiohttp would not send)
and the relay's app with the Forwarder as its catch-all run on 127.0.0.1 in a loop of their
own; requests go in over raw sockets or httpx. The last tests put the local gateway (the
handlers on moto) behind the relay and compare the agent's answers with the direct ones."""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import pytest
from aiohttp import web
from werkzeug.serving import make_server

from orchestrator.http import api as api_module
from orchestrator.relay.proxy import CORRELATION_ID, MAX_BODY_BYTES, Forwarder
from orchestrator_local.gateway import Gateway
from orchestrator_local.runtime import InProcessRuntime
from orchestrator_local.template import Template
from tests.e2e.plexd_wire import GoAgent, go_marshal
from tests.integration.conftest import Api, Tenant, mint_enrollment_token
from tests.integration.test_request_encoding import big_capabilities

T = TypeVar("T")
MiB = 1024 * 1024


# --- a loop of their own for the servers ---------------------------------------------------------------
class Loop:
    """An asyncio loop in a thread: the servers run there, the test talks to them over sockets."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


async def serve(app: web.Application, **runner_options: Any) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, **runner_options)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, int(runner.addresses[0][1])


# --- the upstream: an echo app -------------------------------------------------------------------------
@dataclass
class Upstream:
    peers: list[tuple[str, int]] = field(default_factory=list)  # the connection of every request

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * MiB)
        app.router.add_route("*", "/prod/special/gzip", self.gzipped)
        app.router.add_route("*", "/prod/special/cookies", self.cookies)
        app.router.add_route("*", "/prod/special/no-content", self.no_content)
        app.router.add_route("*", "/prod/special/accepted", self.accepted)
        app.router.add_route("*", "/prod/special/redirect", self.redirect)
        app.router.add_route("*", "/prod/special/slow", self.slow)
        app.router.add_route("*", "/{tail:.*}", self.echo)
        return app

    async def echo(self, request: web.Request) -> web.Response:
        """What arrived: method, raw target, raw header lines in order, the body's bytes."""
        body = await request.read()
        self.peers.append(request.transport.get_extra_info("peername") if request.transport else ("", 0))
        seen = {
            "method": request.method,
            "target": request.raw_path,
            "headers": [[name.decode("latin-1"), value.decode("latin-1")] for name, value in request.raw_headers],
            "length": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
            "body": base64.b64encode(body).decode() if len(body) < MiB else None,
        }
        return web.json_response(seen, headers={"X-Echo": "yes"})

    async def gzipped(self, request: web.Request) -> web.Response:
        return web.Response(
            body=GZIPPED_ANSWER,
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip", "Vary": "Accept-Encoding"},
        )

    async def cookies(self, request: web.Request) -> web.Response:
        response = web.Response(text="{}", content_type="application/json")
        for value in ("a=1; Path=/; HttpOnly", "b=2; Path=/v1"):
            response.headers.add("Set-Cookie", value)
        for value in ('</v1/x?cursor=2>; rel="next"', '</v1/x?cursor=0>; rel="prev"'):
            response.headers.add("Link", value)
        return response

    async def no_content(self, request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def accepted(self, request: web.Request) -> web.Response:
        return web.Response(status=202)

    async def redirect(self, request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": "/prod/v1/elsewhere"})

    async def slow(self, request: web.Request) -> web.Response:
        await asyncio.sleep(1)
        return web.Response(text="late")


GZIPPED_ANSWER = gzip.compress(json.dumps({"items": ["x" * 40] * 50}).encode(), 6)


# --- the upstream: raw answers aiohttp would not send --------------------------------------------------
RAW_ANSWERS = {
    # A body with no Content-Type, no Server, no Date
    "/untyped": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Raw: 1\r\n\r\nhello",
    # Chunked, with hop-by-hop headers (one named by Connection) that must not come back
    "/chunked": (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: keep-alive, X-Hop\r\nX-Hop: secret\r\nKeep-Alive: timeout=5\r\n"
        b"Proxy-Authenticate: Basic\r\nX-End: 1\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    ),
    # Says 100 bytes, sends 5, hangs up
    "/cut": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\nhello",
}


async def raw_upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    request_line = await reader.readline()
    while (await reader.readline()) not in {b"\r\n", b""}:
        pass  # the header lines; none of these requests has a body
    path = request_line.split(b" ")[1].decode()
    writer.write(RAW_ANSWERS[path])
    await writer.drain()
    writer.close()


# --- the relay -----------------------------------------------------------------------------------------
@dataclass
class Relay:
    port: int
    forwarder: Forwarder

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Servers:
    loop: Loop
    upstream: Upstream
    upstream_port: int
    raw_port: int
    runners: list[web.AppRunner] = field(default_factory=list)
    forwarders: list[Forwarder] = field(default_factory=list)

    def relay(self, upstream: str | None = None, *, auto_decompress: bool = False, **options: Any) -> Relay:
        """A relay app with a Forwarder as its catch-all, as the lead's app mounts it."""
        forwarder = Forwarder(upstream or f"http://127.0.0.1:{self.upstream_port}/prod", **options)

        async def started() -> int:
            await forwarder.start()
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", forwarder.forward)
            runner, port = await serve(app, auto_decompress=auto_decompress)
            self.runners.append(runner)
            return port

        port = self.loop.run(started())
        self.forwarders.append(forwarder)
        return Relay(port, forwarder)


@pytest.fixture
def servers() -> Iterator[Servers]:
    loop = Loop()
    upstream = Upstream()

    async def started() -> tuple[web.AppRunner, int, asyncio.Server]:
        runner, port = await serve(upstream.app(), auto_decompress=False)
        raw = await asyncio.start_server(raw_upstream, "127.0.0.1", 0)
        return runner, port, raw

    runner, port, raw = loop.run(started())
    running = Servers(loop, upstream, port, raw.sockets[0].getsockname()[1], [runner])
    try:
        yield running
    finally:

        async def stopped() -> None:
            for forwarder in running.forwarders:
                await forwarder.close()
            for each in running.runners:
                await each.cleanup()
            raw.close()
            await raw.wait_closed()

        loop.run(stopped())
        loop.stop()


@pytest.fixture
def relay(servers: Servers) -> Relay:
    return servers.relay(timeout_seconds=2.0)


# --- a raw HTTP/1.1 client -----------------------------------------------------------------------------
@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]  # as sent, in order
    body: bytes

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]

    def one(self, name: str) -> str | None:
        values = self.all(name)
        assert len(values) <= 1, (name, values)
        return values[0] if values else None

    def names(self) -> set[str]:
        return {key.lower() for key, _ in self.headers}

    def json(self) -> Any:
        return json.loads(self.body)


def exchange(port: int, head: str, body: bytes = b"") -> Answer:
    """Send one request and read its answer: the head, then as many bytes as it counts."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        stream = connection.makefile("rb")
        status, headers = read_head(stream)
        while 100 <= status < 200:  # an interim answer (100 Continue)
            status, headers = read_head(stream)
        answer = Answer(status, headers, b"")
        assert answer.one("Transfer-Encoding") is None  # the relay always counts its answer
        if status not in {204, 304}:
            length = answer.one("Content-Length")
            assert length is not None, answer
            answer.body = stream.read(int(length))
            assert len(answer.body) == int(length)
    return answer


def read_head(stream: Any) -> tuple[int, list[tuple[str, str]]]:
    status = int(stream.readline().split(b" ")[1])
    headers = []
    while (line := stream.readline()) not in {b"\r\n", b""}:
        name, _, value = line.decode("latin-1").partition(":")
        headers.append((name, value.strip()))
    return status, headers


def echoed(answer: Answer) -> dict[str, Any]:
    assert answer.status == 200, answer
    assert answer.one("X-Echo") == "yes"
    seen: dict[str, Any] = answer.json()
    seen["body"] = base64.b64decode(seen["body"]) if seen["body"] is not None else None
    return seen


def header_values(seen: dict[str, Any], name: str) -> list[str]:
    return [value for key, value in seen["headers"] if key.lower() == name.lower()]


def assert_problem(answer: Answer, status: int, code: str) -> dict[str, Any]:
    assert answer.status == status, answer
    assert answer.one("Content-Type") == "application/problem+json", answer.headers
    problem: dict[str, Any] = answer.json()
    assert problem["code"] == code
    assert problem["status"] == status
    assert problem["type"] == f"urn:plexsphere:problem:{code}"
    for name in ("title", "detail", "instance", "correlation_id"):
        assert problem[name], name
    assert answer.one("X-Correlation-Id") == problem["correlation_id"]
    return problem


# --- requests up ---------------------------------------------------------------------------------------
def test_a_gzip_body_goes_up_as_the_bytes_sent_with_every_end_to_end_header(relay: Relay) -> None:
    # Given a heartbeat as the Go agent sends one over 1 KiB: gzip bytes with their headers
    body = gzip.compress(go_marshal({"node_id": "n-1", "routes": ["10.0.0.0/8"] * 200}), 6)
    headers = {
        "Authorization": "Bearer nsk-secret",
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
        "Idempotency-Key": "key-1",
        "Last-Event-ID": "evt-9",
        "User-Agent": "plexd/1.4.2",
        "Accept": "application/json",
        "Accept-Encoding": "gzip",
        "X-Correlation-Id": "corr-1",
    }
    # When it is posted to the relay
    with httpx.Client() as client:
        answer = client.post(f"{relay.url}/v1/nodes/n-1/heartbeat", content=body, headers=headers)
    # Then the upstream got the same method, path under its base, bytes and headers
    assert answer.status_code == 200, answer.text
    seen = answer.json()
    assert seen["method"] == "POST"
    assert seen["target"] == "/prod/v1/nodes/n-1/heartbeat"
    assert base64.b64decode(seen["body"]) == body
    for name, value in headers.items():
        assert header_values(seen, name) == [value], name
    assert header_values(seen, "Content-Length") == [str(len(body))]


@pytest.mark.parametrize("auto_decompress", [True, False])
def test_the_relays_server_leaves_a_gzip_body_as_sent_only_with_auto_decompress_off(
    servers: Servers, auto_decompress: bool
) -> None:
    # Given a relay whose AppRunner has aiohttp's default (True) or the relay's setting (False)
    relay = servers.relay(auto_decompress=auto_decompress)
    plain = go_marshal({"hostname": "web-01", "pad": "x" * 2000})
    body = gzip.compress(plain)
    # When a gzip body is posted
    seen = echoed(
        exchange(
            relay.port,
            "POST /v1/register HTTP/1.1\nHost: relay\nContent-Encoding: gzip\nContent-Type: application/json\n"
            f"Content-Length: {len(body)}\nConnection: close\n",
            body,
        )
    )
    # Then with auto_decompress=False the upstream gets the gzip bytes; aiohttp's default would
    # have sent the inflated bytes still labelled gzip
    assert header_values(seen, "Content-Encoding") == ["gzip"]
    assert seen["body"] == (plain if auto_decompress else body)


def test_the_path_and_query_go_up_with_their_percent_encoding_untouched(relay: Relay) -> None:
    target = "/v1/projects/p%2F1/nodes/a%7Eb//c;x=1?selector=env%3Dprod&q=a+b&q=%20&empty=&raw=[1]"
    seen = echoed(exchange(relay.port, f"GET {target} HTTP/1.1\nHost: relay\nConnection: close\n"))
    assert seen["target"] == "/prod" + target
    assert seen["method"] == "GET"
    assert seen["length"] == 0
    assert header_values(seen, "Content-Length") == []  # a GET without a body says nothing of one


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "OPTIONS"])
def test_every_method_goes_up_as_it_is(relay: Relay, method: str) -> None:
    body = b'{"a":1}'
    answer = exchange(
        relay.port,
        f"{method} /v1/x HTTP/1.1\nHost: relay\nContent-Type: application/json\nContent-Length: 7\nConnection: close\n",
        body,
    )
    seen = echoed(answer)
    assert (seen["method"], seen["body"]) == (method, body)


def test_the_base_path_of_the_upstream_is_kept_with_or_without_a_trailing_slash(servers: Servers) -> None:
    for upstream, expected in [
        (f"http://127.0.0.1:{servers.upstream_port}/prod/", "/prod/v1/ping"),
        (f"http://127.0.0.1:{servers.upstream_port}/stage/v2", "/stage/v2/v1/ping"),
        (f"http://127.0.0.1:{servers.upstream_port}", "/v1/ping"),
        (f"http://127.0.0.1:{servers.upstream_port}/", "/v1/ping"),
    ]:
        relay = servers.relay(upstream)
        seen = echoed(exchange(relay.port, "GET /v1/ping HTTP/1.1\nHost: relay\nConnection: close\n"))
        assert seen["target"] == expected, upstream


def test_an_absolute_form_target_goes_up_as_its_path_to_the_upstream(servers: Servers, relay: Relay) -> None:
    answer = exchange(relay.port, "GET http://elsewhere.example/v1/ping?x=1 HTTP/1.1\nHost: relay\nConnection: close\n")
    seen = echoed(answer)
    assert seen["target"] == "/prod/v1/ping?x=1"
    assert header_values(seen, "Host") == [f"127.0.0.1:{servers.upstream_port}"]


def test_hop_by_hop_headers_and_host_stay_behind_and_the_rest_goes_up_in_order(servers: Servers) -> None:
    relay = servers.relay()
    answer = exchange(
        relay.port,
        "POST /v1/x HTTP/1.1\nHost: relay.example\nConnection: keep-alive, X-Private\nKeep-Alive: timeout=5\n"
        "X-Private: hop\nTE: trailers\nTrailer: X-Sum\nProxy-Authorization: Basic eA==\nProxy-Connection: close\n"
        "Proxy-Whatever: x\nExpect: 100-continue\nX-Multi: one\nX-Multi: two\nCookie: c=1\nContent-Length: 2\n"
        "Connection: close\n",
        b"{}",
    )
    seen = echoed(answer)
    names = {name.lower() for name, _ in seen["headers"]}
    for dropped in ("connection", "keep-alive", "x-private", "te", "trailer", "proxy-authorization", "expect"):
        assert dropped not in names, dropped
    assert "proxy-connection" not in names and "proxy-whatever" not in names
    assert header_values(seen, "Host") == [f"127.0.0.1:{servers.upstream_port}"]
    assert header_values(seen, "X-Multi") == ["one", "two"]
    assert header_values(seen, "Cookie") == ["c=1"]
    assert seen["body"] == b"{}"


def test_no_header_is_invented_on_the_way_up_but_the_forwarded_ones(relay: Relay) -> None:
    # aiohttp's client would add Accept, Accept-Encoding, User-Agent and a Content-Type of its own
    seen = echoed(
        exchange(relay.port, "POST /v1/x HTTP/1.1\nHost: relay\nContent-Length: 3\nConnection: close\n", b"abc")
    )
    assert {name.lower() for name, _ in seen["headers"]} == {
        "host",
        "content-length",
        "x-forwarded-for",
        "x-forwarded-proto",
    }


def test_a_post_without_a_body_goes_up_with_a_zero_length(relay: Relay) -> None:
    seen = echoed(exchange(relay.port, "POST /v1/nodes/n/deregister HTTP/1.1\nHost: relay\nConnection: close\n"))
    assert (seen["method"], seen["length"]) == ("POST", 0)
    assert header_values(seen, "Content-Length") == ["0"]


def test_the_peer_is_appended_to_x_forwarded_for_and_the_scheme_is_said(servers: Servers) -> None:
    relay = servers.relay()
    seen = echoed(
        exchange(
            relay.port,
            "GET /v1/ping HTTP/1.1\nHost: relay\nX-Forwarded-For: 203.0.113.7\nX-Forwarded-For: 10.0.0.1\n"
            "X-Forwarded-Proto: gopher\nConnection: close\n",
        )
    )
    assert header_values(seen, "X-Forwarded-For") == ["203.0.113.7, 10.0.0.1, 127.0.0.1"]
    assert header_values(seen, "X-Forwarded-Proto") == ["http"]
    # Behind a load balancer that ends TLS the relay is told the scheme
    behind_tls = servers.relay(forwarded_proto="https")
    seen = echoed(exchange(behind_tls.port, "GET /v1/ping HTTP/1.1\nHost: relay\nConnection: close\n"))
    assert header_values(seen, "X-Forwarded-For") == ["127.0.0.1"]
    assert header_values(seen, "X-Forwarded-Proto") == ["https"]


def test_a_chunked_body_goes_up_whole_with_its_length(relay: Relay) -> None:
    seen = echoed(
        exchange(
            relay.port,
            "POST /v1/x HTTP/1.1\nHost: relay\nTransfer-Encoding: chunked\nConnection: close\n",
            b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n",
        )
    )
    assert seen["body"] == b"abcdefg"
    assert header_values(seen, "Content-Length") == ["7"]
    assert header_values(seen, "Transfer-Encoding") == []


def test_a_body_of_api_gateways_limit_and_a_bit_more_goes_up_whole(relay: Relay) -> None:
    body = bytes(range(256)) * (10 * MiB // 256) + b"a bit more" * 1000
    seen = echoed(
        exchange(
            relay.port,
            f"POST /v1/x HTTP/1.1\nHost: relay\nContent-Length: {len(body)}\nConnection: close\n",
            body,
        )
    )
    assert (seen["length"], seen["sha256"]) == (len(body), hashlib.sha256(body).hexdigest())
    assert header_values(seen, "Content-Length") == [str(len(body))]
    assert header_values(seen, "Content-Type") == []


def test_a_body_over_the_relays_limit_is_413_and_not_sent_up(servers: Servers, relay: Relay) -> None:
    # Declared too long: refused before reading it
    answer = exchange(
        relay.port, f"POST /v1/x HTTP/1.1\nHost: relay\nContent-Length: {MAX_BODY_BYTES + 1}\nConnection: close\n"
    )
    problem = assert_problem(answer, 413, "request_body_too_large")
    assert problem["instance"] == "/v1/x"
    # Chunked, found too long while reading
    too_long = b"x" * (MAX_BODY_BYTES + 1)
    answer = exchange(
        relay.port,
        "POST /v1/y HTTP/1.1\nHost: relay\nTransfer-Encoding: chunked\nConnection: close\n",
        f"{len(too_long):x}\r\n".encode() + too_long + b"\r\n0\r\n\r\n",
    )
    assert_problem(answer, 413, "request_body_too_large")
    assert servers.upstream.peers == []


def test_a_body_that_ends_before_its_length_is_400_not_sent_up_and_no_error(
    servers: Servers, relay: Relay, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    # Given a client that says 100 bytes, sends 10 and hangs up
    with socket.create_connection(("127.0.0.1", relay.port), timeout=10) as connection:
        connection.sendall(b"POST /v1/x HTTP/1.1\r\nHost: relay\r\nContent-Length: 100\r\n\r\nonly ten b")
        connection.shutdown(socket.SHUT_WR)
        assert connection.recv(100) == b""  # aiohttp's server closes on the client's end of stream
    # Then the relay answered it 400 (to no one), sent nothing up and logged no error
    deadline = time.monotonic() + 5
    while not any(r.name == "aiohttp.access" for r in caplog.records) and time.monotonic() < deadline:
        time.sleep(0.05)
    [access] = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert '"POST /v1/x HTTP/1.1" 400' in access
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert servers.upstream.peers == []


# --- answers down --------------------------------------------------------------------------------------
def test_a_gzip_answer_comes_back_as_the_bytes_sent(relay: Relay) -> None:
    answer = exchange(relay.port, "GET /special/gzip HTTP/1.1\nHost: relay\nAccept-Encoding: gzip\nConnection: close\n")
    assert answer.status == 200
    assert answer.body == GZIPPED_ANSWER
    assert answer.one("Content-Encoding") == "gzip"
    assert answer.one("Content-Type") == "application/json"
    assert answer.one("Vary") == "Accept-Encoding"
    assert answer.one("Content-Length") == str(len(GZIPPED_ANSWER))


def test_an_httpx_client_reads_a_gzip_answer_as_the_upstreams_json(relay: Relay) -> None:
    with httpx.Client() as client:
        answer = client.get(f"{relay.url}/special/gzip", headers={"Accept-Encoding": "gzip"})
    assert answer.json() == json.loads(gzip.decompress(GZIPPED_ANSWER))


def test_repeated_answer_headers_come_back_each_in_order(relay: Relay) -> None:
    answer = exchange(relay.port, "GET /special/cookies HTTP/1.1\nHost: relay\nConnection: close\n")
    assert answer.all("Set-Cookie") == ["a=1; Path=/; HttpOnly", "b=2; Path=/v1"]
    assert answer.all("Link") == ['</v1/x?cursor=2>; rel="next"', '</v1/x?cursor=0>; rel="prev"']
    assert answer.body == b"{}"


def test_an_answer_without_a_body_gets_no_content_type(relay: Relay) -> None:
    no_content = exchange(relay.port, "DELETE /special/no-content HTTP/1.1\nHost: relay\nConnection: close\n")
    assert no_content.status == 204
    assert (no_content.body, no_content.one("Content-Type"), no_content.one("Content-Length")) == (b"", None, None)
    accepted = exchange(relay.port, "POST /special/accepted HTTP/1.1\nHost: relay\nConnection: close\n")
    assert accepted.status == 202
    assert (accepted.body, accepted.one("Content-Type"), accepted.one("Content-Length")) == (b"", None, "0")


def test_an_answer_keeps_what_the_upstream_sent_and_gets_nothing_of_aiohttps(servers: Servers) -> None:
    relay = servers.relay(f"http://127.0.0.1:{servers.raw_port}")
    answer = exchange(relay.port, "GET /untyped HTTP/1.1\nHost: relay\nConnection: close\n")
    assert (answer.status, answer.body) == (200, b"hello")
    assert answer.one("X-Raw") == "1"
    assert answer.one("Content-Type") is None
    assert answer.one("Server") is None
    assert answer.one("Date") is not None  # a proxy adds the Date an upstream left out (RFC 9110 §6.6.1)


def test_the_upstreams_server_and_date_come_back_as_they_were(relay: Relay) -> None:
    answer = exchange(relay.port, "GET /v1/ping HTTP/1.1\nHost: relay\nConnection: close\n")
    assert "aiohttp" in (answer.one("Server") or "")
    assert answer.one("Date") is not None


def test_a_chunked_answer_comes_back_counted_without_its_hop_by_hop_headers(servers: Servers) -> None:
    relay = servers.relay(f"http://127.0.0.1:{servers.raw_port}")
    answer = exchange(relay.port, "GET /chunked HTTP/1.1\nHost: relay\nConnection: close\n")
    assert answer.body == b"hello world"
    assert answer.one("Content-Length") == "11"
    assert answer.one("X-End") == "1"
    for dropped in ("x-hop", "keep-alive", "proxy-authenticate"):
        assert dropped not in answer.names(), dropped
    assert answer.all("Connection") == ["close"]  # the relay's own, for this client


def test_a_redirect_comes_back_and_is_not_followed(servers: Servers, relay: Relay) -> None:
    answer = exchange(relay.port, "GET /special/redirect HTTP/1.1\nHost: relay\nConnection: close\n")
    assert answer.status == 302
    assert answer.one("Location") == "/prod/v1/elsewhere"
    assert servers.upstream.peers == []  # the echo never saw /elsewhere


def test_one_clients_cookies_are_never_sent_with_anothers_request(servers: Servers) -> None:
    # A host name: aiohttp's default cookie jar would keep cookies for it (not for an IP address)
    relay = servers.relay(f"http://localhost:{servers.upstream_port}/prod")
    exchange(relay.port, "GET /special/cookies HTTP/1.1\nHost: relay\nConnection: close\n")
    seen = echoed(exchange(relay.port, "GET /v1/ping HTTP/1.1\nHost: relay\nConnection: close\n"))
    assert header_values(seen, "Cookie") == []


def test_a_head_answer_keeps_the_upstreams_length(relay: Relay) -> None:
    got = exchange(relay.port, "GET /v1/ping HTTP/1.1\nHost: relay\nConnection: close\n")
    with socket.create_connection(("127.0.0.1", relay.port), timeout=10) as connection:
        connection.sendall(b"HEAD /v1/ping HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n")
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    lengths = re.findall(rb"(?im)^content-length: *(\d+)", head)
    assert body == b""
    # The echo's HEAD answer is the GET's minus the method's name length difference ("HEAD" vs "GET")
    assert [int(n) for n in lengths] == [len(got.body) + 1]


# --- the connection pool and the count -------------------------------------------------------------------
def test_requests_share_one_kept_alive_connection_to_the_upstream(servers: Servers, relay: Relay) -> None:
    for _ in range(5):
        echoed(exchange(relay.port, "GET /v1/ping HTTP/1.1\nHost: relay\nConnection: close\n"))
    assert len(servers.upstream.peers) == 5
    assert len(set(servers.upstream.peers)) == 1
    assert relay.forwarder.forwarded == 5


def test_concurrent_requests_each_get_their_own_answer(servers: Servers, relay: Relay) -> None:
    def one(i: int) -> tuple[int, dict[str, Any]]:
        body = f"body-{i}".encode() * (i + 1)
        head = f"POST /v1/n/{i}?i={i} HTTP/1.1\nHost: relay\nX-I: {i}\nContent-Length: {len(body)}\nConnection: close\n"
        return i, echoed(exchange(relay.port, head, body))

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(one, range(48)))
    for i, seen in answers:
        assert seen["target"] == f"/prod/v1/n/{i}?i={i}"
        assert header_values(seen, "X-I") == [str(i)]
        assert seen["body"] == f"body-{i}".encode() * (i + 1)
    assert len(set(servers.upstream.peers)) <= 16  # pooled: at most one connection per request in flight
    assert relay.forwarder.forwarded == 48


# --- the upstream failing ------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_upstream_is_502_upstream_unavailable(servers: Servers) -> None:
    relay = servers.relay(f"http://127.0.0.1:{free_port()}/prod")
    answer = exchange(relay.port, "GET /v1/ping HTTP/1.1\nHost: relay\nX-Correlation-Id: corr-42\nConnection: close\n")
    problem = assert_problem(answer, 502, "upstream_unavailable")
    assert problem["correlation_id"] == "corr-42"
    assert problem["instance"] == "/v1/ping"
    # A malformed correlation id is replaced by one of the relay's own
    answer = exchange(relay.port, "GET /v1/ping HTTP/1.1\nHost: relay\nX-Correlation-Id: a b\nConnection: close\n")
    assert assert_problem(answer, 502, "upstream_unavailable")["correlation_id"] != "a b"


def test_an_upstream_that_hangs_up_mid_answer_is_502(servers: Servers) -> None:
    relay = servers.relay(f"http://127.0.0.1:{servers.raw_port}")
    assert_problem(
        exchange(relay.port, "GET /cut HTTP/1.1\nHost: relay\nConnection: close\n"), 502, "upstream_unavailable"
    )


def test_an_upstream_slower_than_the_timeout_is_504_upstream_timeout(servers: Servers) -> None:
    relay = servers.relay(timeout_seconds=0.3)
    answer = exchange(relay.port, "GET /special/slow HTTP/1.1\nHost: relay\nConnection: close\n")
    assert_problem(answer, 504, "upstream_timeout")
    # and the relay keeps answering
    echoed(exchange(relay.port, "GET /v1/ping HTTP/1.1\nHost: relay\nConnection: close\n"))


def test_the_relays_correlation_id_rule_is_the_apis() -> None:
    assert CORRELATION_ID.pattern == api_module.CORRELATION_ID.pattern


@pytest.mark.parametrize("upstream", ["ftp://h/x", "http:///nohost", "http://h/prod?x=1", "http://h/prod#f", "h/prod"])
def test_an_upstream_that_is_not_a_base_url_is_refused(upstream: str) -> None:
    with pytest.raises(ValueError, match="base URL"):
        Forwarder(upstream)


# --- through the local gateway: the handlers on moto ------------------------------------------------------
@pytest.fixture
def gateway_url(api: Api, runtime: InProcessRuntime, template: Template) -> Iterator[str]:
    """The local gateway served over HTTP (werkzeug in a thread), against the test's moto."""
    server = make_server("127.0.0.1", 0, Gateway(runtime.invoke, template), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def comparable(headers: dict[str, str]) -> set[str]:
    """The answer's header names, less the ones that differ between two answers by nature
    (``Connection`` is each hop's own: werkzeug closes, the relay keeps the client's open)."""
    return set(headers) - {"date", "x-correlation-id", "connection"}


def test_the_agents_gzip_registration_and_heartbeat_work_through_the_relay_as_directly(
    servers: Servers, gateway_url: str, api: Api, tenant: Tenant
) -> None:
    relay = servers.relay(gateway_url)
    through, direct = GoAgent(relay.url, version="1.4.2"), GoAgent(gateway_url, version="1.4.2")
    registered = {}
    for name, agent in (("through", through), ("direct", direct)):
        # Given a registration over 1 KiB, which the agent gzips
        body = {
            "token": mint_enrollment_token(api, tenant),
            "hostname": f"web-{name}",
            "capabilities": big_capabilities(),
        }
        assert len(go_marshal(body)) > 1024
        # When it is sent
        reply = agent.request("POST", "/v1/register", body)
        # Then it is registered, with the node's capabilities as sent
        assert reply.status == 201, reply.body
        registered[name] = (reply, reply.json())
    (via_relay, node), (directly, other) = registered["through"], registered["direct"]
    assert set(node) == set(other)
    assert comparable(via_relay.headers) == comparable(directly.headers)
    listed = api.request("GET", f"/v1/projects/{tenant.project_id}/nodes", token=tenant.admin_token).json["items"]
    assert {n["hostname"]: len(n["capabilities"]["builtin_actions"]) for n in listed} == {
        "web-through": 30,
        "web-direct": 30,
    }

    # A heartbeat with the node's NSK: the same answer, byte for byte
    heartbeat = {"node_id": node["node_id"], "status": "healthy", "uptime": "1h", "routes": ["10.0.0.0/8"] * 100}
    path, nsk = f"/v1/nodes/{node['node_id']}/heartbeat", node["node_secret_key"]
    via_relay = through.request("POST", path, heartbeat, token=nsk)
    directly = direct.request("POST", path, heartbeat, token=nsk)
    assert via_relay.status == directly.status == 200
    assert via_relay.raw == directly.raw
    assert comparable(via_relay.headers) == comparable(directly.headers)

    # Another node's NSK: the same Problem
    wrong = other["node_secret_key"]
    via_relay = through.request("POST", path, heartbeat, token=wrong)
    directly = direct.request("POST", path, heartbeat, token=wrong)
    assert via_relay.status == directly.status == 403
    without_id = [{k: v for k, v in json.loads(r.raw).items() if k != "correlation_id"} for r in (via_relay, directly)]
    assert without_id[0] == without_id[1]
    assert without_id[0]["code"] == "nsk_node_mismatch"
    assert comparable(via_relay.headers) == comparable(directly.headers)


def test_a_gzipped_answer_of_the_api_reaches_the_agent_as_sent(
    servers: Servers, gateway_url: str, api: Api, tenant: Tenant
) -> None:
    relay = servers.relay(gateway_url)
    # Two nodes with 30 actions each: the list of nodes is over 1 KiB, which the API gzips
    for hostname in ("web-01", "web-02"):
        body = {"token": mint_enrollment_token(api, tenant), "hostname": hostname, "capabilities": big_capabilities()}
        assert GoAgent(gateway_url).request("POST", "/v1/register", body).status == 201
    path = f"/v1/projects/{tenant.project_id}/nodes"
    head = f"GET {path} HTTP/1.1\nHost: x\nAuthorization: Bearer {tenant.admin_token}\nAccept-Encoding: gzip\n"
    via_relay = exchange(relay.port, head + "Connection: close\n")
    port = int(gateway_url.rsplit(":", 1)[1])
    directly = exchange(port, head + "Connection: close\n")
    assert via_relay.status == directly.status == 200
    assert via_relay.one("Content-Encoding") == directly.one("Content-Encoding") == "gzip"
    assert json.loads(gzip.decompress(via_relay.body)) == json.loads(gzip.decompress(directly.body))
