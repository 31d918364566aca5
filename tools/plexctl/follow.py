"""Follow an Execution until it is terminal (``action watch``, ``action dispatch --wait``).

Polls ``GET .../executions/{id}`` (the server computes its status from exact
counters) and redraws a per-status summary: a rich ``Live`` view when the
stream is a terminal, otherwise one plain line each time the summary changes
(a log or CI job gets a readable history instead of redraw noise).
Overload and passing outages (429, 5xx, transport errors) are retried a few
times in a row before giving up, so a long watch survives a blip.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.live import Live

from plexctl.client import ApiError, TransportFailure
from plexctl.errors import CliError, ExitCode
from plexctl.render import TERMINAL, progress_line, progress_panel, status_counts

MAX_CONSECUTIVE_FAILURES = 5

Fetch = Callable[[], dict[str, Any]]


def is_terminal(execution: dict[str, Any]) -> bool:
    return execution.get("status") in TERMINAL


def outcome_exit_code(execution: dict[str, Any]) -> ExitCode:
    """0 when the Execution succeeded; 1 when it failed, timed out or was cancelled."""
    return ExitCode.OK if execution.get("status") == "succeeded" else ExitCode.FAILURE


class OutcomeFailure(CliError):
    """The followed Execution ended, but not in ``succeeded`` (exit 1)."""

    def __init__(self, execution: dict[str, Any]) -> None:
        counts = ", ".join(f"{status} {n}" for status, n in status_counts(execution).items() if n)
        super().__init__(
            f"execution {execution.get('id')} ended {execution.get('status')} ({counts})",
            outcome_exit_code(execution),
        )


class Follower:
    """Polls ``fetch`` every ``interval`` seconds until the Execution is terminal."""

    def __init__(
        self,
        fetch: Fetch,
        console: Console,
        *,
        interval: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._fetch = fetch
        self._console = console
        self._interval = interval
        self._sleep = sleep
        self._started = time.monotonic()

    def _elapsed(self) -> float:
        return time.monotonic() - self._started

    def _poll(self) -> dict[str, Any]:
        failures = 0
        while True:
            try:
                return self._fetch()
            except (ApiError, TransportFailure) as error:
                if isinstance(error, ApiError) and not error.transient:
                    raise
                failures += 1
                if failures >= MAX_CONSECUTIVE_FAILURES:
                    raise
                self._sleep(self._interval)

    def run(self, first: dict[str, Any] | None = None) -> dict[str, Any]:
        """The terminal Execution, after showing progress from ``first`` (or a fresh GET)."""
        execution = first or self._poll()
        if self._console.is_terminal:
            return self._run_live(execution)
        return self._run_plain(execution)

    def _run_live(self, execution: dict[str, Any]) -> dict[str, Any]:
        with Live(progress_panel(execution, self._elapsed()), console=self._console, refresh_per_second=4) as live:
            while not is_terminal(execution):
                self._sleep(self._interval)
                execution = self._poll()
                live.update(progress_panel(execution, self._elapsed()))
        return execution

    def _run_plain(self, execution: dict[str, Any]) -> dict[str, Any]:
        last: tuple[Any, ...] | None = None
        while True:
            shown = (execution.get("status"), tuple(status_counts(execution).items()))
            if shown != last:
                self._console.print(progress_line(execution, self._elapsed()), markup=False)
                last = shown
            if is_terminal(execution):
                return execution
            self._sleep(self._interval)
            execution = self._poll()
