"""``python -m orchestrator.relay``: the event relay (an ECS task in AWS, a process of its own
under ``make serve``). Configuration comes from the environment: the functions' own
(``TABLE_NAME``, ``EVENT_INDEX_SHARDS``, the secrets' names...) and ``RELAY_*``
(:class:`RelaySettings`)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from orchestrator import secrets
from orchestrator.observability import logger
from orchestrator.relay.app import Relay
from orchestrator.relay.hub import Hub
from orchestrator.relay.poller import IndexPoller
from orchestrator.relay.proxy import Forwarder
from orchestrator.services.context import context_for
from orchestrator.store.event_index import EventIndexStore, IndexedEvent

MAX_BODY_BYTES = 10 * 1024 * 1024 + 64 * 1024  # API Gateway's limit, and a margin: it refuses beyond
CURSOR_WRITE_SECONDS = 5.0
CURSOR_QUIET_SECONDS = 2.0  # cursors are stored once the index has shown no event for this long...
CURSOR_MAX_DELAY_SECONDS = 60.0  # ...or once they have waited this long
STATS_LOG_SECONDS = 60.0
SHUTDOWN_GRACE_SECONDS = 2.0
BUSY_POLL_SPEEDUP = 5  # while reads find events, the index is read 5 times as often


class RelaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RELAY_", frozen=True, extra="ignore")

    host: str = "127.0.0.1"  # 0.0.0.0 in the container (the load balancer reaches the task's address)
    port: int = Field(default=8080, ge=0, le=65535)
    admin_port: int = Field(default=8081, ge=0, le=65535)  # /stats, on 127.0.0.1 only
    upstream_url: str
    forwarded_proto: str | None = None  # X-Forwarded-Proto sent up (https behind a TLS load balancer)
    poll_seconds: float = Field(default=0.5, gt=0, le=10)
    lookback_seconds: float = Field(default=5.0, gt=0, le=60)
    refresh_seconds: float = Field(default=3600.0, ge=0)  # deregistrations are pushed; this is the safety net
    keep_alive_seconds: float = Field(default=25.0, gt=0, le=80)
    max_stream_seconds: float = Field(default=3600.0, gt=0)
    ready_file: Path | None = None  # written once listening: {"port", "admin_port", "pid"} (local mode)
    parent_pid: int | None = None  # stop when this process is gone (local mode)


class CursorSchedule:
    """When the delivery cursors are stored: every few seconds, but not while a fan-out is still
    writing events (one write per node it reached would compete with its last rounds for the
    table), unless they have waited ``max_delay`` seconds."""

    def __init__(self, quiet: float = CURSOR_QUIET_SECONDS, max_delay: float = CURSOR_MAX_DELAY_SECONDS) -> None:
        self.quiet = quiet
        self.max_delay = max_delay
        self._waiting_since: float | None = None

    def due(self, now: float, last_busy_poll: float, *, pending: bool) -> bool:
        if not pending:
            self._waiting_since = None
            return False
        if self._waiting_since is None:
            self._waiting_since = now
        if now - last_busy_poll >= self.quiet or now - self._waiting_since >= self.max_delay:
            self._waiting_since = None
            return True
        return False


class Service:
    """The relay process: the hub, the index poller's thread, the public and admin listeners."""

    def __init__(self, settings: RelaySettings) -> None:
        self.settings = settings
        ctx = context_for("node_events")
        self.hub = Hub(ctx, refresh_seconds=settings.refresh_seconds)
        self.poller = IndexPoller(
            EventIndexStore(ctx.table), ctx.settings.event_index_shards, lookback_seconds=settings.lookback_seconds
        )
        self.forwarder = Forwarder(settings.upstream_url, forwarded_proto=settings.forwarded_proto)
        self.relay = Relay(
            self.hub,
            self.forwarder,
            keep_alive_seconds=settings.keep_alive_seconds,
            max_stream_seconds=settings.max_stream_seconds,
        )
        self.poll_errors = 0
        self.slowest_poll = 0.0  # seconds: the longest index read, and the longest hand-over to the hub
        self.slowest_delivery = 0.0
        self.last_busy_poll = 0.0  # monotonic time of the last poll that found events
        self.stopping = asyncio.Event()

    def stats(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            **asdict(self.hub.counters),
            "streams_open": self.hub.streams_open,
            **self.hub.delivery_lag(),
            "proxied_requests": self.forwarder.forwarded,
            "polls": self.poller.polls,
            "index_queries": self.poller.queries,
            "index_ids_read": self.poller.ids_read,
            "index_items_read": self.poller.items_read,
            "poll_errors": self.poll_errors,
            "slowest_poll_s": round(self.slowest_poll, 3),
            "slowest_delivery_s": round(self.slowest_delivery, 3),
            "cpu_seconds": round(time.process_time(), 3),
        }

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stopping.set)
        await self.forwarder.start()
        warming = asyncio.create_task(asyncio.to_thread(self._warm))  # not in the way of the listeners
        public = web.AppRunner(
            self.relay.application(client_max_size=MAX_BODY_BYTES),
            handler_cancellation=True,
            auto_decompress=False,
            access_log=None,
        )
        admin_app = web.Application()
        admin_app.router.add_get("/stats", self._stats)
        admin = web.AppRunner(admin_app, access_log=None)
        await public.setup()
        await admin.setup()
        public_site = web.TCPSite(public, self.settings.host, self.settings.port, backlog=4096)
        admin_site = web.TCPSite(admin, "127.0.0.1", self.settings.admin_port)
        await public_site.start()
        await admin_site.start()
        self._announce(_port(public_site), _port(admin_site))
        stop_polling = threading.Event()
        poller = threading.Thread(target=self._poll, args=(loop, stop_polling), name="index-poller", daemon=True)
        poller.start()
        tasks = [warming, asyncio.create_task(self._write_cursors()), asyncio.create_task(self._log_stats())]
        if self.settings.parent_pid:
            tasks.append(asyncio.create_task(self._watch_parent(self.settings.parent_pid)))
        await self.stopping.wait()
        stop_polling.set()
        self.hub.end_all()  # every agent reconnects at once, to another task
        await asyncio.sleep(min(SHUTDOWN_GRACE_SECONDS, 0.2 + self.hub.streams_open / 5000))
        for task in tasks:
            task.cancel()
        await asyncio.to_thread(self.hub.write_cursors, self.hub.take_unwritten())
        await public.cleanup()
        await admin.cleanup()
        await self.forwarder.close()

    @staticmethod
    def _warm() -> None:
        """Read the signing keyring (creating the secret store's client) before the first event
        needs it, in the background while the listeners start."""
        try:
            secrets.signing_keyring()
        except Exception:  # noqa: BLE001 - the first delivery reads it again, and reports
            logger.warning("signing keyring not read at start", exc_info=True)

    def _announce(self, port: int, admin_port: int) -> None:
        logger.info("event relay listening", port=port, admin_port=admin_port)
        ready = self.settings.ready_file
        if ready is not None:
            partial = ready.with_name(f".{ready.name}.partial")
            partial.write_text(json.dumps({"port": port, "admin_port": admin_port, "pid": os.getpid()}))
            partial.replace(ready)

    def _poll(self, loop: asyncio.AbstractEventLoop, stop: threading.Event) -> None:
        """The poller's thread: read the index, hand what is new to the hub (on the loop); read
        again sooner while reads find events (a fan-out writes them in rounds), else after
        ``poll_seconds``."""
        while not stop.is_set():
            started = time.monotonic()
            events: list[IndexedEvent] = []
            try:
                events = self.poller.poll()
            except Exception:  # noqa: BLE001 - a failed read is retried; the horizon records the gap
                self.poll_errors += 1
                logger.warning("event index read failed", exc_info=True)
            else:
                polled = time.monotonic()
                self.slowest_poll = max(self.slowest_poll, polled - started)
                delivery = asyncio.run_coroutine_threadsafe(self.hub.deliver(events, self.poller.horizon), loop)
                try:
                    delivery.result()
                except Exception:  # noqa: BLE001 - the streams concerned reconnect and replay
                    logger.warning("delivery failed", exc_info=True)
                self.slowest_delivery = max(self.slowest_delivery, time.monotonic() - polled)
            busy = any(e.event is not None for e in events)
            if busy:
                self.last_busy_poll = time.monotonic()
            interval = self.settings.poll_seconds / BUSY_POLL_SPEEDUP if busy else self.settings.poll_seconds
            stop.wait(max(0.0, interval - (time.monotonic() - started)))

    async def _write_cursors(self) -> None:
        schedule = CursorSchedule()
        while True:
            await asyncio.sleep(CURSOR_WRITE_SECONDS)
            if schedule.due(time.monotonic(), self.last_busy_poll, pending=self.hub.has_unwritten()):
                await asyncio.to_thread(self.hub.write_cursors, self.hub.take_unwritten())

    async def _log_stats(self) -> None:
        while True:
            await asyncio.sleep(STATS_LOG_SECONDS)
            logger.info("event relay stats", **self.stats())

    async def _watch_parent(self, parent: int) -> None:
        while True:
            await asyncio.sleep(0.5)
            if os.getppid() != parent:
                self.stopping.set()
                return

    async def _stats(self, _: web.Request) -> web.Response:
        return web.json_response(self.stats())


def _port(site: web.TCPSite) -> int:
    server = site._server
    sockets = getattr(server, "sockets", None) or []
    return int(sockets[0].getsockname()[1]) if sockets else 0


def main() -> None:
    settings = RelaySettings()  # upstream_url comes from the environment (RELAY_UPSTREAM_URL)
    asyncio.run(Service(settings).run())


if __name__ == "__main__":
    main()
