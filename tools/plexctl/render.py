"""Rendering: rich tables for people, JSON/YAML for scripts, Problems on stderr.

In ``json``/``yaml`` mode stdout carries exactly one document and nothing
else (progress and errors go to stderr), so ``plexctl ... -o json | jq``
always parses.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click
import yaml
from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from plexctl.errors import CliError

FORMATS = ("table", "json", "yaml")
STATUSES = ("pending", "ack", "started", "succeeded", "failed", "cancelled", "timeout")
TERMINAL = frozenset({"succeeded", "failed", "cancelled", "timeout"})
STATUS_STYLE = {
    "succeeded": "green",
    "failed": "red",
    "timeout": "red",
    "cancelled": "yellow",
    "started": "cyan",
    "ack": "cyan",
    "pending": "dim",
}
PAYLOAD_SHOWN = 80  # characters of a report payload in a table cell
PIPE_WIDTH = 200  # a table piped to a file or a test is not squeezed to 80 columns
PROBLEM_FIELDS = ("type", "title", "status", "detail", "instance", "code", "correlation_id")


def console(*, stderr: bool = False) -> Console:
    """A console for stdout (or stderr); wide and colourless when not a terminal."""
    stream = sys.stderr if stderr else sys.stdout
    terminal = stream.isatty()
    width = None if terminal or os.environ.get("COLUMNS") else PIPE_WIDTH
    return Console(file=stream, width=width, highlight=False, soft_wrap=not terminal)


def emit(data: Any, output: str, table: Callable[[Any], RenderableType]) -> None:
    """Print ``data`` as JSON or YAML, or ``table(data)`` through rich."""
    if output == "json":
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    elif output == "yaml":
        click.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), nl=False)
    else:
        print_table(table(data))


def print_table(renderable: RenderableType) -> None:
    """Through rich; when piped, without the cell padding rich leaves at line ends."""
    out = console()
    if out.is_terminal:
        out.print(renderable)
        return
    with out.capture() as captured:
        out.print(renderable)
    click.echo("\n".join(line.rstrip() for line in captured.get().splitlines()))


def styled_status(status: str | None) -> Text:
    return Text(status or "-", style=STATUS_STYLE.get(status or "", ""))


def _cell(value: Any) -> str:
    """One table cell: ``-`` for nothing, and never more than one line (node errors end in newlines)."""
    if value is None or value == "":
        return "-"
    return " ".join(str(value).split()) or "-"


def executions_table(items: Sequence[Mapping[str, Any]]) -> Table:
    table = Table(box=None, pad_edge=False)
    for column in ("ID", "ACTION", "TYPE", "STATUS", "TARGETS", "CREATED", "COMPLETED"):
        table.add_column(column, no_wrap=True)
    for item in items:
        table.add_row(
            _cell(item.get("id")),
            escape(_cell(item.get("action"))),
            _cell(item.get("type")),
            styled_status(item.get("status")),
            _cell(item.get("target_count", len(item.get("targets") or []))),
            _cell(item.get("created_at")),
            _cell(item.get("completed_at")),
        )
    return table


def status_counts(execution: Mapping[str, Any]) -> dict[str, int]:
    """Targets per status, every status present (zeros included), in state-machine order."""
    counts = dict.fromkeys(STATUSES, 0)
    for target in execution.get("targets") or []:
        status = str(target.get("status"))
        counts[status] = counts.get(status, 0) + 1
    return counts


def execution_detail(execution: Mapping[str, Any]) -> Group:
    """The Execution's fields, then one row per target."""
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    fields: list[tuple[str, Any]] = [
        ("id", execution.get("id")),
        ("action", f"{execution.get('action')} ({execution.get('type')})"),
        ("status", styled_status(execution.get("status"))),
        ("project", execution.get("project_id")),
        ("parameters", json.dumps(execution.get("parameters") or {}, ensure_ascii=False)),
        ("timeout", f"{execution.get('timeout_seconds')}s"),
        ("triggered by", (execution.get("triggered_by") or {}).get("subject")),
        ("created", execution.get("created_at")),
        ("completed", execution.get("completed_at")),
    ]
    counts = ", ".join(f"{status} {n}" for status, n in status_counts(execution).items() if n)
    fields.append(("targets", f"{len(execution.get('targets') or [])} ({counts or 'none'})"))
    for name, value in fields:
        summary.add_row(name, value if isinstance(value, Text) else escape(_cell(value)))
    targets = Table(box=None, pad_edge=False)
    for column in ("NODE", "STATUS", "EXIT", "UPDATED", "OUTPUT", "ERROR"):
        targets.add_column(column, no_wrap=column != "ERROR")
    for target in execution.get("targets") or []:
        ref = target.get("output_ref") or {}
        targets.add_row(
            _cell(target.get("node_id")),
            styled_status(target.get("status")),
            _cell(target.get("exit_code")),
            _cell(target.get("updated_at")),
            _cell(output_summary(ref)),
            escape(_cell(target.get("error"))),
        )
    return Group(summary, Text(""), targets)


def output_summary(ref: Mapping[str, Any]) -> str | None:
    """A target's ``output_ref`` in a cell: its kind and size (SPEC §3: inline bytes are base64)."""
    if not ref:
        return None
    size = ref.get("size")
    if size is None and isinstance(ref.get("inline_bytes"), str):
        size = len(base64.b64decode(ref["inline_bytes"]))
    return f"{ref.get('kind')} ({size} B)" if size is not None else str(ref.get("kind"))


def nodes_table(items: Sequence[Mapping[str, Any]]) -> Table:
    table = Table(box=None, pad_edge=False)
    for column in ("ID", "HOSTNAME", "STATUS", "LABELS", "ACTIONS", "HOOKS", "LAST HEARTBEAT"):
        table.add_column(column, no_wrap=column not in ("LABELS", "ACTIONS", "HOOKS"))
    for item in items:
        capabilities = item.get("capabilities") or {}
        labels = ",".join(f"{key}={value}" for key, value in sorted((item.get("labels") or {}).items()))
        hooks = ",".join(str(hook.get("name")) for hook in capabilities.get("hooks") or [])
        table.add_row(
            _cell(item.get("id")),
            escape(_cell(item.get("hostname"))),
            _cell(item.get("status")),
            escape(_cell(labels)),
            escape(_cell(",".join(capabilities.get("builtin_actions") or []))),
            escape(_cell(hooks)),
            _cell(item.get("last_heartbeat_at")),
        )
    return table


def reports_table(items: Sequence[Mapping[str, Any]]) -> Table:
    table = Table(box=None, pad_edge=False)
    for column in ("KEY", "VERSION", "CONTENT TYPE", "UPDATED", "RECEIVED", "PAYLOAD"):
        table.add_column(column, no_wrap=column != "PAYLOAD")
    for item in items:
        payload = json.dumps(item.get("payload"), separators=(",", ":"), ensure_ascii=False)
        table.add_row(
            escape(_cell(item.get("key"))),
            _cell(item.get("version")),
            escape(_cell(item.get("content_type"))),
            _cell(item.get("updated_at")),
            _cell(item.get("received_at")),
            escape(_cell(payload if len(payload) <= PAYLOAD_SHOWN else payload[: PAYLOAD_SHOWN - 1] + "…")),
        )
    return table


def secrets_table(items: Sequence[Mapping[str, Any]]) -> Table:
    table = Table(box=None, pad_edge=False)
    for column in ("KEY", "VERSION", "NODES", "SELECTOR", "UPDATED"):
        table.add_column(column, no_wrap=column != "NODES")
    for item in items:
        grants = item.get("grants") or {}
        table.add_row(
            escape(_cell(item.get("key"))),
            _cell(item.get("version")),
            escape(_cell(",".join(grants.get("node_ids") or []))),
            escape(_cell(grants.get("selector"))),
            _cell(item.get("updated_at")),
        )
    return table


ARTIFACT_STATUS_STYLE = {"verified": "green", "rejected": "red", "pending": "dim"}


def human_size(size: Any) -> str:
    """Bytes in binary units, one decimal (``24117248`` → ``23.0 MiB``)."""
    if not isinstance(size, int) or isinstance(size, bool):
        return _cell(size)
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB"):
        value /= 1024
        if value < 1024:
            return f"{value:.1f} {unit}"
    return f"{value / 1024:.1f} GiB"


def artifacts_table(items: Sequence[Mapping[str, Any]]) -> Table:
    """The agent's publications: the SHA-256 in full (operators compare it with their build)."""
    table = Table(box=None, pad_edge=False)
    for column in ("VERSION", "OS", "ARCH", "STATUS", "SIZE", "SHA256", "PUBLISHED"):
        table.add_column(column, no_wrap=True)
    for item in items:
        status = str(item.get("status") or "")
        table.add_row(
            escape(_cell(item.get("version"))),
            escape(_cell(item.get("os"))),
            escape(_cell(item.get("arch"))),
            Text(status or "-", style=ARTIFACT_STATUS_STYLE.get(status, "")),
            human_size(item.get("size")),
            escape(_cell(item.get("sha256"))),
            escape(_cell(item.get("published_at") or item.get("rejected_reason"))),
        )
    return table


def data_table(items: Sequence[Mapping[str, Any]]) -> Table:
    table = Table(box=None, pad_edge=False)
    for column in ("KEY", "CONTENT TYPE", "VERSION", "UPDATED", "PAYLOAD"):
        table.add_column(column, no_wrap=column != "PAYLOAD")
    for item in items:
        payload = json.dumps(item.get("payload"), ensure_ascii=False)
        table.add_row(
            escape(str(item.get("key"))),
            escape(str(item.get("content_type"))),
            str(item.get("version")),
            escape(str(item.get("updated_at"))),
            escape(payload if len(payload) <= 60 else payload[:57] + "..."),
        )
    return table


def drift_table(items: Sequence[Mapping[str, Any]]) -> Table:
    """One row per correction, under its report's id and time."""
    table = Table(box=None, pad_edge=False)
    for column in ("ID", "TIMESTAMP", "TYPE", "DETAIL"):
        table.add_column(column, no_wrap=column != "DETAIL")
    for item in items:
        corrections = item.get("corrections") or [{}]
        for index, correction in enumerate(corrections):
            first = index == 0
            table.add_row(
                _cell(item.get("id") if first else None),
                _cell(item.get("timestamp") if first else None),
                escape(_cell(correction.get("type"))),
                escape(_cell(correction.get("detail"))),
            )
    return table


def _rule_text(rule: Mapping[str, Any]) -> str:
    port = rule.get("port") or "any"
    return f"{rule.get('action')} {rule.get('src')} -> {rule.get('dst')} {rule.get('protocol')}/{port}"


def policies_table(items: Sequence[Mapping[str, Any]]) -> Table:
    table = Table(box=None, pad_edge=False)
    for column in ("ID", "SELECTOR", "RULES", "VERSION", "UPDATED"):
        table.add_column(column, no_wrap=column != "SELECTOR")
    for item in items:
        table.add_row(
            escape(str(item.get("id"))),
            escape(str(item.get("selector"))),
            str(len(item.get("rules") or [])),
            str(item.get("version")),
            escape(str(item.get("updated_at"))),
        )
    return table


def policy_detail(data: Mapping[str, Any]) -> Table:
    grid = key_values({k: v for k, v in data.items() if k != "rules"})
    for index, rule in enumerate(data.get("rules") or []):
        grid.add_row(f"rule {index + 1}", escape(_rule_text(rule)))
    return grid


def key_values(data: Mapping[str, Any]) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for key, value in data.items():
        grid.add_row(escape(str(key)), escape(_cell(value)))
    return grid


def progress_line(execution: Mapping[str, Any], elapsed: float) -> str:
    """One plain progress line: aggregate status, terminal/total, the non-zero counts."""
    counts = status_counts(execution)
    done = sum(n for status, n in counts.items() if status in TERMINAL)
    total = sum(counts.values())
    parts = " ".join(f"{status}={n}" for status, n in counts.items() if n)
    return f"[{elapsed:5.1f}s] {execution.get('id')} {execution.get('status')} {done}/{total} done  {parts}"


def progress_panel(execution: Mapping[str, Any], elapsed: float) -> Group:
    """The live view: header, a bar of terminal targets, the per-status counts."""
    from rich.progress_bar import ProgressBar

    counts = status_counts(execution)
    total = sum(counts.values())
    done = sum(n for status, n in counts.items() if status in TERMINAL)
    header = Text.assemble(
        ("execution ", "bold"),
        str(execution.get("id")),
        "  ",
        escape(str(execution.get("action"))),
        "  ",
        styled_status(execution.get("status")),
        f"  {done}/{total} done  {elapsed:.0f}s",
    )
    table = Table(box=None, pad_edge=False)
    for status in STATUSES:
        table.add_column(status, justify="right", style=STATUS_STYLE.get(status, ""))
    table.add_row(*(str(counts[status]) for status in STATUSES))
    return Group(header, ProgressBar(total=max(total, 1), completed=done, width=40), table)


def _problem_extras(problem: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    for key, value in problem.items():
        if key not in PROBLEM_FIELDS and value not in (None, ""):
            yield key, value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def show_error(error: CliError, output: str) -> None:
    """The error on stderr: the Problem as JSON in ``json``/``yaml`` mode, else readable lines."""
    problem = error.problem
    if output in ("json", "yaml"):
        document = {"error": problem or {"title": error.message}, "exit_code": error.exit_code}
        click.echo(json.dumps(document, ensure_ascii=False), err=True)
        return
    if problem is None:
        click.echo(f"Error: {error.message}", err=True)
        return
    click.echo(f"Error: {problem.get('title') or error.message} (HTTP {problem.get('status')})", err=True)
    lines = [
        ("detail", problem.get("detail")),
        ("code", problem.get("code")),
        ("correlation id", problem.get("correlation_id")),
        *_problem_extras(problem),
    ]
    for name, value in lines:
        if value not in (None, ""):
            click.echo(f"  {name}: {value}", err=True)
