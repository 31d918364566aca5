"""The event relay's HTTP side (aiohttp): the node event stream served from the hub, a health
check, and every other request forwarded to the REST API as it came."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import Any

from aiohttp import web

from orchestrator.errors import OrchestratorError
from orchestrator.http.api import CORRELATION_ID, InternalError
from orchestrator.http.problem import problem_response
from orchestrator.observability import logger
from orchestrator.relay.hub import CLOSE, KEEP_ALIVE, OPENING, Hub, Stream
from orchestrator.relay.proxy import Forwarder

EVENTS_PATH = "/v1/nodes/{node_id}/events"
KEEP_ALIVE_SECONDS = 25.0  # a byte well inside the agent's 90 s idle limit and any proxy's
MAX_STREAM_SECONDS = 3600.0  # then the stream ends and the agent reconnects (to any task)
EVENT_STREAM_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}


class Relay:
    def __init__(
        self,
        hub: Hub,
        forwarder: Forwarder,
        *,
        keep_alive_seconds: float = KEEP_ALIVE_SECONDS,
        max_stream_seconds: float = MAX_STREAM_SECONDS,
    ) -> None:
        self.hub = hub
        self.forwarder = forwarder
        self.keep_alive_seconds = keep_alive_seconds
        self.max_stream_seconds = max_stream_seconds

    def application(self, *, client_max_size: int) -> web.Application:
        app = web.Application(client_max_size=client_max_size)
        app.router.add_route("*", EVENTS_PATH, self.events)
        app.router.add_get("/healthz", self.health)
        app.router.add_route("*", "/{tail:.*}", self.forwarder.forward)
        return app

    async def health(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "streams_open": self.hub.streams_open})

    async def events(self, request: web.Request) -> web.StreamResponse:
        if request.method != "GET":
            return await self.forwarder.forward(request)  # the API answers other methods
        last_event_id = request.headers.get("Last-Event-ID") or request.query.get("last_event_id")
        try:
            stream = await self.hub.open(request.match_info["node_id"], bearer(request), last_event_id)
        except OrchestratorError as error:
            return problem(request, error)
        except Exception:  # noqa: BLE001 - as the Lambda path answers a failure of its own
            logger.exception("event stream failed to open")
            return problem(request, InternalError("The request could not be completed."))
        response = web.StreamResponse(status=200, headers=EVENT_STREAM_HEADERS)
        try:
            await response.prepare(request)
            await response.write(OPENING.encode())
            await self._pump(stream, response)
        except ConnectionError:
            pass  # the agent went away (its 30 s timeout, mostly): it reconnects
        finally:
            self.hub.close(stream)
        with contextlib.suppress(ConnectionError):
            await response.write_eof()
        return response

    async def _pump(self, stream: Stream, response: web.StreamResponse) -> None:
        """Write the stream's queue as it fills, a keep-alive comment when it stays empty,
        until the stream is closed or has lived ``max_stream_seconds``."""
        ends = time.monotonic() + self.max_stream_seconds
        while (left := ends - time.monotonic()) > 0:
            try:
                item = await asyncio.wait_for(stream.queue.get(), timeout=min(self.keep_alive_seconds, left))
            except TimeoutError:
                item = KEEP_ALIVE
            if item is CLOSE:
                return
            chunks = [item]
            while not stream.queue.empty():  # what arrived together goes out in one write
                more = stream.queue.get_nowait()
                if more is CLOSE:
                    await response.write("".join(str(c) for c in chunks).encode())
                    return
                chunks.append(more)
            await response.write("".join(str(c) for c in chunks).encode())


def bearer(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def problem(request: web.Request, error: OrchestratorError) -> web.Response:
    """The Problem+JSON answer the Lambda path gives for ``error``."""
    supplied = request.headers.get("X-Correlation-Id")
    correlation = supplied if supplied and CORRELATION_ID.fullmatch(supplied) else str(uuid.uuid4())
    answer = problem_response(error, instance=request.path, correlation_id=correlation)
    headers: dict[str, Any] = {k: v for k, v in answer.headers.items() if isinstance(v, str)}
    return web.Response(status=answer.status_code, body=str(answer.body).encode(), headers=headers)
