"""The ``plexctl`` command tree (click).

Commands validate their input locally first (click's parsing, UUIDs, exactly
one of ``--node``/``--selector``), so a malformed command exits 2 before any
request; only then are credentials resolved (exit 3 when none are usable) and
the server asked. Errors are :class:`~plexctl.errors.CliError` subclasses
carrying their exit code.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, TypeVar

import click

from plexctl import __version__, render, telemetry
from plexctl.client import ApiClient
from plexctl.config import (
    PROFILE_ENV,
    SERVER_ENV,
    TOKEN_FILE_ENV,
    Flags,
    config_path,
    explicit_server,
    explicit_token_file,
    read_token_file,
    resolve,
    save_profile,
)
from plexctl.errors import CliError, ExitCode, InputError
from plexctl.follow import Follower, OutcomeFailure

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CODES = """\b
Exit codes:
   0  success (with --wait / watch: the Execution succeeded)
   1  transport error, 5xx, 404, 409 (e.g. hook_integrity_violation), 429
      capacity_exceeded; with --wait / watch: the Execution failed, timed out
      or was cancelled
   2  local input error (malformed UUID, missing flag, both/neither of
      --node/--selector), 400, 422 (e.g. selector_empty_cohort)
   3  missing or insecure credentials, 401
   4  403 other than rebac_denied
  77  403 rebac_denied
"""

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
ACTION_TYPES = ("builtin", "hook")


# --- persistent flags and shared options ------------------------------------------------------------


def _remember(attribute: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    """Store a persistent flag on the shared :class:`Flags`; a subcommand's value beats the root's."""

    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        if value is not None:
            setattr(ctx.ensure_object(Flags), attribute, value)

    return callback


def persistent_flags(command: F) -> F:
    """``--server``, ``--profile``, ``--token-file``, ``--output``: on the root and on every subcommand."""
    options = [
        click.option(
            "--server",
            metavar="URL",
            expose_value=False,
            callback=_remember("server"),
            help=f"API base URL [env {SERVER_ENV}; else the profile; else .local/credentials.json].",
        ),
        click.option(
            "--profile",
            metavar="NAME",
            expose_value=False,
            callback=_remember("profile"),
            help=f"Profile of the config file [env {PROFILE_ENV}; else its current_profile].",
        ),
        click.option(
            "--token-file",
            type=click.Path(dir_okay=False, path_type=Path),
            expose_value=False,
            callback=_remember("token_file"),
            help=f"File holding the bearer token; must not be group/world readable [env {TOKEN_FILE_ENV}].",
        ),
        click.option(
            "-o",
            "--output",
            type=click.Choice(render.FORMATS),
            expose_value=False,
            callback=_remember("output"),
            help="table (default), json or yaml; json/yaml print only that document on stdout.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _uuid(_ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Ids are UUIDs: refuse anything else locally (exit 2), send the canonical spelling."""
    if value is None:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a UUID", param=param) from None


def _uuid_list(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(str(_uuid(ctx, param, value)) for value in values)


def project_option(command: F) -> F:
    return click.option(
        "--project",
        metavar="UUID",
        callback=_uuid,
        help="Project id [default: the profile's or .local/credentials.json's].",
    )(command)


def paging_options(command: F) -> F:
    command = click.option("--all", "all_pages", is_flag=True, help="Follow next_cursor to the last page.")(command)
    command = click.option("--cursor", metavar="CURSOR", help="next_cursor of a previous page.")(command)
    return click.option("--limit", type=click.IntRange(1, 200), help="Page size, 1..200 [server default 50].")(command)


def _parse_params(_ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, Any]:
    """``k=v`` pairs; a value that parses as JSON is sent as that JSON (``level=3`` → 3, ``name=x`` → "x")."""
    parameters: dict[str, Any] = {}
    for item in values:
        key, equals, raw = item.partition("=")
        if not equals or not key:
            raise click.BadParameter(f"{item!r} is not k=v", param=param)
        if key in parameters:
            raise click.BadParameter(f"{key!r} given twice", param=param)
        try:
            parameters[key] = json.loads(raw)
        except ValueError:
            parameters[key] = raw
    return parameters


# --- the session a command talks through ---------------------------------------------------------


def _flags() -> Flags:
    return click.get_current_context().ensure_object(Flags)


def _connect(project_flag: str | None) -> tuple[ApiClient, str]:
    """Credentials (exit 3 when missing or insecure), then the project (exit 2 when none or not a UUID)."""
    resolved = resolve(_flags())
    project = project_flag or resolved.project
    if not project:
        raise InputError("Missing option '--project' (and no default in the profile or .local/credentials.json).")
    try:
        project = str(uuid.UUID(project))
    except ValueError:
        raise InputError(f"project {project!r} (from {resolved.source}) is not a UUID") from None
    return ApiClient(resolved.server, resolved.token), project


class PlexctlGroup(click.Group):
    """The root group: errors are shown in the ``--output`` format chosen anywhere on the line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CliError as error:
            error.output_format = ctx.ensure_object(Flags).output
            raise


# --- root ------------------------------------------------------------------------------------------------


@click.group(cls=PlexctlGroup, context_settings=CONTEXT_SETTINGS, epilog=EXIT_CODES)
@click.version_option(__version__, prog_name="plexctl")
@persistent_flags
def cli() -> None:
    """Operate the Action Orchestrator: dispatch actions to nodes, follow and inspect Executions.

    With no --server, no PLEXSPHERE_URL and no profile, plexctl uses the
    .local/credentials.json that `make serve` writes (searched in the current
    directory and its parents).
    """


@cli.command(epilog=EXIT_CODES)
@persistent_flags
@project_option
def login(project: str | None) -> None:
    """Store --server and the token in --token-file as a profile (default: "default").

    The config file is click's app dir for plexctl ($XDG_CONFIG_HOME/plexctl/config.yaml
    on Linux), written owner-only. The first profile saved becomes the current one.
    """
    flags = _flags()
    server = explicit_server(flags)
    token_file = explicit_token_file(flags)
    if not server:
        raise click.UsageError("Missing option '--server'.")
    if token_file is None:
        raise click.UsageError("Missing option '--token-file'.")
    token = read_token_file(token_file)
    name = flags.profile or os.environ.get(PROFILE_ENV) or "default"
    path = config_path()
    save_profile(path, name, server=server.rstrip("/"), token=token, project=project)
    saved = {"profile": name, "server": server.rstrip("/"), "project": project, "config": str(path)}
    render.emit(saved, flags.output, render.key_values)


# --- action ----------------------------------------------------------------------------------------------


@cli.group(context_settings=CONTEXT_SETTINGS, epilog=EXIT_CODES)
@persistent_flags
def action() -> None:
    """Dispatch actions and read back their Executions."""


def _execution_path(project: str, execution_id: str = "") -> str:
    base = f"/v1/projects/{project}/executions"
    return f"{base}/{execution_id}" if execution_id else base


def _follow(client: ApiClient, project: str, first: Mapping[str, Any], interval: float) -> None:
    """Show progress until terminal, print the final Execution, exit 1 unless it succeeded."""
    output = _flags().output
    # In json/yaml mode stdout carries only the final document: progress goes to stderr.
    progress = render.console(stderr=output != "table")
    path = _execution_path(project, str(first["id"]))
    final = Follower(lambda: client.get(path), progress, interval=interval).run(dict(first))
    if output == "table":
        click.echo()
    render.emit(final, output, render.execution_detail)
    if final.get("status") != "succeeded":
        raise OutcomeFailure(final)


interval_option = click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=1.0,
    show_default=True,
    help="Seconds between polls while following.",
)


@action.command(epilog=EXIT_CODES)
@persistent_flags
@project_option
@click.option("--action", "action_name", required=True, metavar="NAME", help="The builtin or hook to run.")
@click.option("--node", callback=_uuid, metavar="UUID", help="One target node (exclusive with --selector).")
@click.option("--selector", metavar="EXPR", help="Label selector, e.g. 'env=prod,tier in (web,api)'.")
@click.option("--type", "action_type", type=click.Choice(ACTION_TYPES), help="[server default: builtin]")
@click.option("--timeout-seconds", type=click.IntRange(1, 86400), help="Per-target deadline [server default 300].")
@click.option(
    "--param",
    "parameters",
    multiple=True,
    callback=_parse_params,
    metavar="K=V",
    help="Action parameter (repeatable); V is parsed as JSON when it parses, else sent as a string.",
)
@click.option("--confirm", is_flag=True, help="Confirm an action declared dangerous.")
@click.option("--idempotency-key", metavar="KEY", help="A retry with the same key returns the first Execution.")
@click.option("--max-concurrency", type=click.IntRange(min=1), help="Targets in flight at once.")
@click.option("--max-errors", type=click.IntRange(min=0), help="Stop dispatching after this many failures.")
@click.option(
    "--wait", is_flag=True, help="Show live progress until the Execution is terminal; exit 1 unless it succeeded."
)
@interval_option
def dispatch(
    project: str | None,
    action_name: str,
    node: str | None,
    selector: str | None,
    action_type: str | None,
    timeout_seconds: int | None,
    parameters: dict[str, Any],
    confirm: bool,
    idempotency_key: str | None,
    max_concurrency: int | None,
    max_errors: int | None,
    wait: bool,
    interval: float,
) -> None:
    """Run an action on one node (--node) or on every node matching --selector."""
    if (node is None) == (selector is None):
        raise click.UsageError("Give exactly one of --node or --selector.")
    body: dict[str, Any] = {"action": action_name, "parameters": parameters}
    if action_type:
        body["type"] = action_type
    if timeout_seconds is not None:
        body["timeout_seconds"] = timeout_seconds
    body.update({"node_id": node} if node else {"selector": selector})
    if confirm:
        body["confirmation"] = True
    rate = {
        key: value
        for key, value in (("max_concurrency", max_concurrency), ("max_errors", max_errors))
        if value is not None
    }
    if rate:
        body["rate"] = rate
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    client, project_id = _connect(project)
    with client:
        execution = client.post(f"{_execution_path(project_id)}:dispatch", json=body, headers=headers)
        if wait:
            _follow(client, project_id, execution, interval)
        else:
            render.emit(execution, _flags().output, render.execution_detail)


def _list(
    path_suffix: str, project: str | None, params: dict[str, Any], all_pages: bool, table: Callable[[Any], Any]
) -> None:
    client, project_id = _connect(project)
    with client:
        pages = list(client.pages(f"/v1/projects/{project_id}/{path_suffix}", params, follow=all_pages))
    data: dict[str, Any] = {"items": [item for page in pages for item in page.get("items") or []]}
    next_cursor = pages[-1].get("next_cursor")
    if next_cursor:
        data["next_cursor"] = next_cursor
    output = _flags().output
    render.emit(data, output, lambda document: table(document["items"]))
    if next_cursor and output == "table":
        click.echo(f"more: --cursor {next_cursor} (or --all)", err=True)


@action.command(name="list", epilog=EXIT_CODES)
@persistent_flags
@project_option
@click.option("--status", type=click.Choice(render.STATUSES), help="Only Executions with this aggregate status.")
@click.option("--action-name", metavar="NAME", help="Only Executions of this action.")
@paging_options
def list_executions(
    project: str | None,
    status: str | None,
    action_name: str | None,
    limit: int | None,
    cursor: str | None,
    all_pages: bool,
) -> None:
    """List the project's Executions, oldest first."""
    params = {"status": status, "action_name": action_name, "limit": limit, "cursor": cursor}
    _list("executions", project, params, all_pages, render.executions_table)


execution_id_option = click.option(
    "--id", "execution_id", required=True, callback=_uuid, metavar="UUID", help="Execution id."
)


@action.command(epilog=EXIT_CODES)
@persistent_flags
@project_option
@execution_id_option
def get(project: str | None, execution_id: str) -> None:
    """Show one Execution and its targets."""
    client, project_id = _connect(project)
    with client:
        execution = client.get(_execution_path(project_id, execution_id))
    render.emit(execution, _flags().output, render.execution_detail)


@action.command(epilog=EXIT_CODES)
@persistent_flags
@project_option
@execution_id_option
def cancel(project: str | None, execution_id: str) -> None:
    """Cancel an Execution: its open targets become cancelled (409 → exit 1 when already terminal)."""
    client, project_id = _connect(project)
    with client:
        execution = client.post(f"{_execution_path(project_id, execution_id)}:cancel")
    render.emit(execution, _flags().output, render.execution_detail)


@action.command(epilog=EXIT_CODES)
@persistent_flags
@project_option
@execution_id_option
@interval_option
def watch(project: str | None, execution_id: str, interval: float) -> None:
    """Follow an Execution until it is terminal; exit 0 if it succeeded, else 1."""
    client, project_id = _connect(project)
    with client:
        _follow(client, project_id, client.get(_execution_path(project_id, execution_id)), interval)


def _write_output(client: ApiClient, document: Mapping[str, Any], sink: IO[bytes]) -> int:
    """Write a target's output (inline base64, or the presigned download, digest-checked); its size."""
    if document.get("kind") == "inline":
        try:
            data = base64.b64decode(str(document.get("content_base64") or ""), validate=True)
        except binascii.Error as error:
            raise CliError(f"the server sent undecodable output: {error}", ExitCode.FAILURE) from error
        sink.write(data)
        return len(data)
    url = document.get("url")
    if not isinstance(url, str):
        raise CliError(f"unknown output kind {document.get('kind')!r}", ExitCode.FAILURE)
    size, sha256 = client.download(url, sink)
    expected = str(document.get("sha256") or "").removeprefix("sha256:").lower()
    if expected and expected != sha256:
        raise CliError(f"downloaded output's SHA-256 {sha256} differs from {expected}", ExitCode.FAILURE)
    return size


@action.command(epilog=EXIT_CODES)
@persistent_flags
@project_option
@execution_id_option
@click.option("--node", required=True, callback=_uuid, metavar="UUID", help="The target's node id.")
@click.option(
    "--to",
    "to_file",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write to FILE instead of stdout.",
)
def output(project: str | None, execution_id: str, node: str, to_file: Path | None) -> None:
    """Print (or save with --to) one target's output: inline bytes or the stored object.

    With -o json/yaml the server's answer is printed instead of the bytes
    (content_base64, or a presigned url); --to still saves the bytes.
    """
    fmt = _flags().output
    client, project_id = _connect(project)
    with client:
        document = client.get(f"{_execution_path(project_id, execution_id)}/targets/{node}/output")
        if to_file is not None:
            try:
                with to_file.open("wb") as sink:
                    size = _write_output(client, document, sink)
            except CliError:
                to_file.unlink(missing_ok=True)
                raise
            if fmt == "table":
                click.echo(f"wrote {size} bytes to {to_file}", err=True)
            else:
                render.emit({**document, "written_to": str(to_file)}, fmt, render.key_values)
        elif fmt == "table":
            _write_output(client, document, sys.stdout.buffer)
            sys.stdout.buffer.flush()
        else:
            render.emit(document, fmt, render.key_values)


# --- node, enroll ------------------------------------------------------------------------------------


@cli.group(context_settings=CONTEXT_SETTINGS, epilog=EXIT_CODES)
@persistent_flags
def node() -> None:
    """The project's nodes."""


@node.command(name="list", epilog=EXIT_CODES)
@persistent_flags
@project_option
@paging_options
def list_nodes(project: str | None, limit: int | None, cursor: str | None, all_pages: bool) -> None:
    """List the project's nodes (deregistered ones included)."""
    _list("nodes", project, {"limit": limit, "cursor": cursor}, all_pages, render.nodes_table)


@node.command(name="reports", epilog=EXIT_CODES)
@persistent_flags
@project_option
@click.argument("node_id", callback=_uuid, metavar="NODE_ID")
@paging_options
def node_reports(project: str | None, node_id: str, limit: int | None, cursor: str | None, all_pages: bool) -> None:
    """A node's report entries, the most recently written first."""
    params = {"limit": limit, "cursor": cursor}
    _list(f"nodes/{node_id}/reports", project, params, all_pages, render.reports_table)


@node.command(name="drift", epilog=EXIT_CODES)
@persistent_flags
@project_option
@click.argument("node_id", callback=_uuid, metavar="NODE_ID")
@paging_options
def node_drift(project: str | None, node_id: str, limit: int | None, cursor: str | None, all_pages: bool) -> None:
    """What a node corrected when it reconciled (the last 30 days), newest first."""
    _list(f"nodes/{node_id}/drift", project, {"limit": limit, "cursor": cursor}, all_pages, render.drift_table)


def _time_option(name: str, help_text: str) -> Callable[[F], F]:
    def convert(_ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return telemetry.parse_time(value, datetime.now(UTC))
        except ValueError as error:
            raise click.BadParameter(str(error), param=param) from None

    return click.option(name, metavar="1h|RFC3339", callback=convert, help=help_text)


def telemetry_options(command: F) -> F:
    command = _time_option("--until", "Only records received before this [default: now].")(command)
    return _time_option(
        "--since", "Only records received since this: 30m, 1h, 2d, 1h30m ago, or an RFC 3339 time [default: 24h]."
    )(command)


def _read_telemetry(
    kind: str,
    project: str | None,
    node_id: str,
    query: dict[str, Any],
    *,
    limit: int | None,
    all_pages: bool,
    follow: bool = False,
    lag: int = telemetry.FOLLOW_LAG_SECONDS,
) -> None:
    output = _flags().output
    client, project_id = _connect(project)
    path = f"/v1/projects/{project_id}/nodes/{node_id}/{kind}"
    with client:

        def fetch(params: dict[str, Any]) -> dict[str, Any]:
            page: dict[str, Any] = client.get(path, {k: v for k, v in params.items() if v is not None})
            return page

        items, cursor = telemetry.collect(fetch, query, want=None if all_pages else limit or DEFAULT_PAGE)
        if follow:
            tail = telemetry.Tail(items, cut=cursor is not None, since=query.get("since"), lag=timedelta(seconds=lag))
            _follow_telemetry(kind, fetch, items, tail, output=output)
            return
    if output != "table":
        data: dict[str, Any] = {"items": items}
        if cursor:
            data["next_cursor"] = cursor
        render.emit(data, output, lambda _: "")
        return
    for line in telemetry.lines(kind, items):
        click.echo(line)
    if cursor:
        # The cursor is bound to since/until as sent: a relative --since must be sent as then.
        window = "".join(f" --{name} {query[name]}" for name in ("since", "until") if query.get(name))
        click.echo(f"older: --cursor {cursor}{window} (or --all)", err=True)


def _follow_telemetry(
    kind: str,
    fetch: Callable[[dict[str, Any]], dict[str, Any]],
    first: list[dict[str, Any]],
    tail: telemetry.Tail,
    *,
    output: str,
) -> None:
    """Print ``first`` oldest first, then each new record as it arrives, until Ctrl-C; in
    json/yaml mode one JSON document per record and line."""

    def emit(items: Iterable[Mapping[str, Any]]) -> None:
        for item in items:
            if output == "table":
                click.echo(telemetry.LINES[kind](item))
            else:
                click.echo(json.dumps(item, separators=(",", ":"), ensure_ascii=False))

    emit(reversed(first))
    try:
        telemetry.follow(fetch, tail, emit)
    except KeyboardInterrupt:
        return


DEFAULT_PAGE = 50


@node.command(name="logs", epilog=EXIT_CODES)
@persistent_flags
@project_option
@click.argument("node_id", callback=_uuid, metavar="NODE_ID")
@telemetry_options
@paging_options
@click.option("-f", "--follow", is_flag=True, help="Keep printing new records as they arrive (Ctrl-C to stop).")
@click.option(
    "--lag",
    type=click.IntRange(min=0),
    default=telemetry.FOLLOW_LAG_SECONDS,
    show_default=True,
    metavar="SECONDS",
    help="With --follow: how far before the newest record shown each poll reads again. Records"
    " become readable when the telemetry stream flushes, up to 1.5 x its buffer interval after they arrive.",
)
def node_logs(
    project: str | None,
    node_id: str,
    since: str | None,
    until: str | None,
    limit: int | None,
    cursor: str | None,
    all_pages: bool,
    follow: bool,
    lag: int,
) -> None:
    """A node's log records, oldest first: `received_at severity unit: message`.

    \b
    The newest --limit records (50) of the window; --all for every one. With -o json the
    API's page (newest first); with --follow -o json one JSON record per line.
    """
    if follow and (until or cursor or all_pages):
        raise InputError("--follow reads up to now: it takes no --until, --cursor or --all.")
    query = {"since": since, "until": until, "cursor": cursor}
    _read_telemetry("logs", project, node_id, query, limit=limit, all_pages=all_pages, follow=follow, lag=lag)


def _telemetry_reader(kind: str, summary: str) -> None:
    """``plexctl node metrics|audit``: the read of ``kind`` records, as ``node logs`` without
    ``--follow``."""

    @node.command(name=kind, epilog=EXIT_CODES, help=summary)
    @persistent_flags
    @project_option
    @click.argument("node_id", callback=_uuid, metavar="NODE_ID")
    @telemetry_options
    @paging_options
    def read(
        project: str | None,
        node_id: str,
        since: str | None,
        until: str | None,
        limit: int | None,
        cursor: str | None,
        all_pages: bool,
    ) -> None:
        query = {"since": since, "until": until, "cursor": cursor}
        _read_telemetry(kind, project, node_id, query, limit=limit, all_pages=all_pages)


_telemetry_reader("metrics", "A node's metric records, oldest first: `received_at group [peer=…] data`.")
_telemetry_reader(
    "audit", "A node's audit records, oldest first: `received_at event_type action result source subject= object=`."
)


@node.group(context_settings=CONTEXT_SETTINGS, epilog=EXIT_CODES)
@persistent_flags
def data() -> None:
    """A node's operator data entries (sent to the node in `node_state_updated` and `/state`)."""


def _data_path(project_id: str, node_id: str, key: str = "") -> str:
    return f"/v1/projects/{project_id}/nodes/{node_id}/data" + (f"/{key}" if key else "")


@data.command(name="set", epilog=EXIT_CODES)
@persistent_flags
@project_option
@click.argument("node_id", metavar="NODE", callback=_uuid)
@click.argument("key")
@click.option("--content-type", default="application/json", show_default=True, help="The entry's media type.")
@click.option("--payload", "payload_text", metavar="JSON", help="The payload, as JSON.")
@click.option("--file", "payload_file", type=click.File("r"), help="Read the payload (JSON) from FILE (- for stdin).")
def data_set(
    project: str | None,
    node_id: str,
    key: str,
    content_type: str,
    payload_text: str | None,
    payload_file: IO[str] | None,
) -> None:
    """Create or replace the node's entry KEY (exactly one of --payload and --file)."""
    if (payload_text is None) == (payload_file is None):
        raise InputError("give exactly one of --payload and --file")
    text = payload_text if payload_text is not None else payload_file.read()  # type: ignore[union-attr]
    try:
        payload = json.loads(text)
    except ValueError as error:
        raise InputError(f"the payload is not JSON: {error}") from error
    client, project_id = _connect(project)
    with client:
        entry = client.request(
            "PUT", _data_path(project_id, node_id, key), json={"content_type": content_type, "payload": payload}
        )
    render.emit(entry, _flags().output, render.key_values)


@data.command(name="delete", epilog=EXIT_CODES)
@persistent_flags
@project_option
@click.argument("node_id", metavar="NODE", callback=_uuid)
@click.argument("key")
def data_delete(project: str | None, node_id: str, key: str) -> None:
    """Delete the node's entry KEY."""
    client, project_id = _connect(project)
    with client:
        client.request("DELETE", _data_path(project_id, node_id, key))
    click.echo(f"deleted {key}", err=True)


@data.command(name="list", epilog=EXIT_CODES)
@persistent_flags
@project_option
@click.argument("node_id", metavar="NODE", callback=_uuid)
def data_list(project: str | None, node_id: str) -> None:
    """List the node's entries."""
    client, project_id = _connect(project)
    with client:
        entries = client.get(_data_path(project_id, node_id))
    render.emit(entries, _flags().output, lambda document: render.data_table(document["items"]))


# --- policy --------------------------------------------------------------------------------------------

RULE_FIELDS = ("src", "dst", "port", "protocol", "action")


def _parse_rules(_ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[dict[str, Any]]:
    """``src=..,dst=..,port=..,protocol=..,action=..`` per --rule (port and protocol optional)."""
    rules = []
    for value in values:
        rule: dict[str, Any] = {}
        for part in value.split(","):
            name, sep, field_value = part.partition("=")
            name = name.strip()
            if not sep or name not in RULE_FIELDS or name in rule:
                raise click.BadParameter(f"{value!r}: expected {'=..,'.join(RULE_FIELDS)}=.. (each once)", param=param)
            rule[name] = field_value.strip()
        if "port" in rule:
            try:
                rule["port"] = int(rule["port"])
            except ValueError:
                raise click.BadParameter(f"{value!r}: port must be an integer", param=param) from None
        rules.append(rule)
    return rules


@cli.group(context_settings=CONTEXT_SETTINGS, epilog=EXIT_CODES)
@persistent_flags
def policy() -> None:
    """The project's network policies (admins write, viewers read)."""


def _policy_path(project_id: str, policy_id: str = "") -> str:
    return f"/v1/projects/{project_id}/policies" + (f"/{policy_id}" if policy_id else "")


@policy.command(name="put", epilog=EXIT_CODES)
@persistent_flags
@project_option
@click.argument("policy_id")
@click.option("--selector", help="Label selector of the nodes the policy concerns.")
@click.option(
    "--rule",
    "rules",
    multiple=True,
    callback=_parse_rules,
    metavar="src=..,dst=..,port=..,protocol=..,action=..",
    help="A rule (repeatable); src/dst are node ids or '*'.",
)
@click.option("--file", "policy_file", type=click.File("r"), help="Read {selector, rules} (JSON) from FILE.")
def policy_put(
    project: str | None, policy_id: str, selector: str | None, rules: list[dict[str, Any]], policy_file: IO[str] | None
) -> None:
    """Create or replace policy POLICY_ID: --selector with --rule..., or --file."""
    if policy_file is not None:
        if selector is not None or rules:
            raise InputError("--file replaces --selector and --rule")
        try:
            body = json.loads(policy_file.read())
        except ValueError as error:
            raise InputError(f"the policy file is not JSON: {error}") from error
    elif selector is None:
        raise InputError("give --selector (with --rule...) or --file")
    else:
        body = {"selector": selector, "rules": rules}
    client, project_id = _connect(project)
    with client:
        written = client.request("PUT", _policy_path(project_id, policy_id), json=body)
    render.emit(written, _flags().output, render.policy_detail)


@policy.command(name="get", epilog=EXIT_CODES)
@persistent_flags
@project_option
@click.argument("policy_id")
def policy_get(project: str | None, policy_id: str) -> None:
    """Show one policy."""
    client, project_id = _connect(project)
    with client:
        found = client.get(_policy_path(project_id, policy_id))
    render.emit(found, _flags().output, render.policy_detail)


@policy.command(name="list", epilog=EXIT_CODES)
@persistent_flags
@project_option
@paging_options
def policy_list(project: str | None, limit: int | None, cursor: str | None, all_pages: bool) -> None:
    """List the project's policies (by id)."""
    _list("policies", project, {"limit": limit, "cursor": cursor}, all_pages, render.policies_table)


@policy.command(name="delete", epilog=EXIT_CODES)
@persistent_flags
@project_option
@click.argument("policy_id")
def policy_delete(project: str | None, policy_id: str) -> None:
    """Delete one policy."""
    client, project_id = _connect(project)
    with client:
        client.request("DELETE", _policy_path(project_id, policy_id))
    click.echo(f"deleted {policy_id}", err=True)


@node.command(name="rotate-keys", epilog=EXIT_CODES)
@persistent_flags
@project_option
@click.argument("node_id", callback=_uuid, metavar="NODE_ID")
def rotate_keys(project: str | None, node_id: str) -> None:
    """Ask a node to rotate its mesh key (operators): its next heartbeat answers
    `rotate_keys: true` and its event stream gets `rotate_keys`."""
    client, project_id = _connect(project)
    with client:
        requested = client.post(f"/v1/projects/{project_id}/nodes/{node_id}/rotate-keys")
    render.emit(requested, _flags().output, render.key_values)


@cli.command(epilog=EXIT_CODES)
@persistent_flags
@project_option
@click.option("--ttl-seconds", type=click.IntRange(60, 2_592_000), help="Token lifetime [server default 86400].")
def enroll(project: str | None, ttl_seconds: int | None) -> None:
    """Mint a one-time enrollment token for `POST /v1/register` (project admins)."""
    client, project_id = _connect(project)
    body = {"ttl_seconds": ttl_seconds} if ttl_seconds is not None else {}
    with client:
        minted = client.post(f"/v1/projects/{project_id}/enrollment-tokens", json=body)
    render.emit(minted, _flags().output, render.key_values)


# --- signing-key -------------------------------------------------------------------------------------


@cli.group(name="signing-key", context_settings=CONTEXT_SETTINGS, epilog=EXIT_CODES)
@persistent_flags
def signing_key() -> None:
    """The deployment's event-signing key (public halves; rotation by deployment admins)."""


def _deployment_client() -> ApiClient:
    resolved = resolve(_flags())
    return ApiClient(resolved.server, resolved.token)


@signing_key.command(name="show", epilog=EXIT_CODES)
@persistent_flags
def signing_key_show() -> None:
    """The current public key, and the previous one while its transition lasts."""
    with _deployment_client() as client:
        keys = client.get("/v1/signing-keys")
    render.emit(keys, _flags().output, render.key_values)


@signing_key.command(name="rotate", epilog=EXIT_CODES)
@persistent_flags
def signing_key_rotate() -> None:
    """A new key signs node events from now on; nodes learn it from a signing_key_rotated
    event signed with the old one (deployment admins only)."""
    with _deployment_client() as client:
        keys = client.post("/v1/signing-keys:rotate")
    render.emit(keys, _flags().output, render.key_values)


# --- secret ------------------------------------------------------------------------------------------


@cli.group(context_settings=CONTEXT_SETTINGS, epilog=EXIT_CODES)
@persistent_flags
def secret() -> None:
    """The project's secrets: values are written, never read back."""


def _secret_value(value: str | None, from_file: Path | None) -> str:
    """The value from --value, --from-file or stdin (exactly one; exit 2 otherwise)."""
    if value is not None and from_file is not None:
        raise InputError("Give at most one of --value and --from-file (or pipe the value on stdin).")
    if from_file is not None:
        return from_file.read_text(encoding="utf-8")
    if value is not None:
        return value
    if sys.stdin.isatty():
        raise InputError("Give --value, --from-file, or pipe the value on stdin.")
    return sys.stdin.read()


@secret.command(name="set", epilog=EXIT_CODES)
@persistent_flags
@project_option
@click.argument("key")
@click.option("--value", metavar="VALUE", help="The value (visible in the process list: prefer --from-file or stdin).")
@click.option(
    "--from-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Read the value from this file."
)
@click.option("--node", "node_ids", multiple=True, callback=_uuid_list, metavar="UUID", help="Grant to this node.")
@click.option("--selector", metavar="SELECTOR", help="Grant to the nodes whose labels match (e.g. env=prod).")
def set_secret(
    project: str | None,
    key: str,
    value: str | None,
    from_file: Path | None,
    node_ids: tuple[str, ...],
    selector: str | None,
) -> None:
    """Create or update a secret (admins); prints its new version, never the value."""
    body: dict[str, Any] = {"value": _secret_value(value, from_file), "grants": {"node_ids": list(node_ids)}}
    if selector is not None:
        body["grants"]["selector"] = selector
    client, project_id = _connect(project)
    with client:
        written = client.put(f"/v1/projects/{project_id}/secrets/{key}", json=body)
    render.emit(written, _flags().output, render.key_values)


@secret.command(name="list", epilog=EXIT_CODES)
@persistent_flags
@project_option
@paging_options
def list_secrets(project: str | None, limit: int | None, cursor: str | None, all_pages: bool) -> None:
    """List the project's secrets by name: versions and grants, never values."""
    _list("secrets", project, {"limit": limit, "cursor": cursor}, all_pages, render.secrets_table)


@secret.command(name="delete", epilog=EXIT_CODES)
@persistent_flags
@project_option
@click.argument("key")
def delete_secret(project: str | None, key: str) -> None:
    """Delete a secret (admins); the nodes granted it are told."""
    client, project_id = _connect(project)
    with client:
        client.delete(f"/v1/projects/{project_id}/secrets/{key}")
    render.emit({"key": key, "deleted": True}, _flags().output, render.key_values)


# --- artifact ----------------------------------------------------------------------------------------

ARTIFACTS = "/v1/artifacts/plexd"


@cli.group(context_settings=CONTEXT_SETTINGS, epilog=EXIT_CODES)
@persistent_flags
def artifact() -> None:
    """Release binaries of the node agent (plexd): publish (deployment admins) and list."""


def _file_digest(path: Path) -> tuple[str, int]:
    hasher, size = hashlib.sha256(), 0
    with path.open("rb") as source:
        for chunk in iter(lambda: source.read(1024 * 1024), b""):
            hasher.update(chunk)
            size += len(chunk)
    return hasher.hexdigest(), size


def _artifacts(client: ApiClient) -> list[dict[str, Any]]:
    return [item for page in client.pages(ARTIFACTS, {"limit": 200}, follow=True) for item in page.get("items") or []]


def _await_verification(client: ApiClient, version: str, os_name: str, arch: str, timeout: float) -> dict[str, Any]:
    """The publication once the verifier has judged the upload (exit 1 if it is still pending
    after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        found = next(
            (
                item
                for item in _artifacts(client)
                if (item.get("version"), item.get("os"), item.get("arch")) == (version, os_name, arch)
            ),
            None,
        )
        if found is not None and found.get("status") != "pending":
            return found
        if time.monotonic() >= deadline:
            message = f"still pending after {timeout:g} s: list it later (plexctl artifact list)"
            raise CliError(message, ExitCode.FAILURE)
        time.sleep(0.5)


@artifact.command(name="publish", epilog=EXIT_CODES)
@persistent_flags
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--version", "version", required=True, metavar="VERSION", help="The release, e.g. 1.5.0.")
@click.option("--os", "os_name", required=True, metavar="GOOS", help="linux, darwin, windows...")
@click.option("--arch", required=True, metavar="GOARCH", help="amd64, arm64, arm, 386...")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=120.0,
    show_default=True,
    help="Seconds to wait for the server to verify the upload.",
)
def artifact_publish(file: Path, version: str, os_name: str, arch: str, timeout: float) -> None:
    """Publish FILE as plexd VERSION for OS/ARCH (deployment admins): declare its SHA-256 and
    size, upload it to the presigned URL, then wait until the server verified it (exit 0) or
    rejected it (exit 1)."""
    sha256, size = _file_digest(file)
    with _deployment_client() as client:
        declared = client.post(f"{ARTIFACTS}/{version}/{os_name}/{arch}", json={"sha256": sha256, "size": size})
        with file.open("rb") as source:
            client.upload(str(declared["upload_url"]), source, size)
        outcome = _await_verification(client, version, os_name, arch, timeout)
    if outcome.get("status") != "verified" or outcome.get("sha256") != sha256:
        reason = outcome.get("rejected_reason") or f"status {outcome.get('status')}"
        raise CliError(f"the server rejected the upload: {reason}", ExitCode.FAILURE)
    render.emit(outcome, _flags().output, render.key_values)


@artifact.command(name="list", epilog=EXIT_CODES)
@persistent_flags
@paging_options
def artifact_list(limit: int | None, cursor: str | None, all_pages: bool) -> None:
    """List plexd's publications: version, platform, status, size and SHA-256."""
    with _deployment_client() as client:
        pages = list(client.pages(ARTIFACTS, {"limit": limit, "cursor": cursor}, follow=all_pages))
    data: dict[str, Any] = {"items": [item for page in pages for item in page.get("items") or []]}
    next_cursor = pages[-1].get("next_cursor")
    if next_cursor:
        data["next_cursor"] = next_cursor
    output = _flags().output
    render.emit(data, output, lambda document: render.artifacts_table(document["items"]))
    if next_cursor and output == "table":
        click.echo(f"more: --cursor {next_cursor} (or --all)", err=True)


def main() -> None:
    """Console-script entry point."""
    cli.main(prog_name="plexctl", obj=Flags())
