"""Where plexctl finds its server, token and default project.

Sources, first match wins for each of the three:

1. flags (``--server``, ``--token-file``, ``--project``), then the environment
   (``PLEXSPHERE_URL``, ``PLEXSPHERE_TOKEN_FILE``);
2. a profile of the config file (``click.get_app_dir("plexctl")/config.yaml``,
   so ``$XDG_CONFIG_HOME/plexctl/config.yaml`` on Linux), chosen with
   ``--profile``, ``PLEXCTL_PROFILE`` or the file's ``current_profile``;
3. ``.local/credentials.json`` of ``make serve``, found in the current
   directory or one of its parents, so ``plexctl action list`` works at once
   in a checkout with a running local server. Its token and project are used
   only for its own server, never sent to another one.

Every file a token is read from must be private to its owner (no group or
other permission bits): a token others can read is refused with exit 3.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import yaml

from plexctl.errors import CredentialsError, InputError

APP_NAME = "plexctl"
CONFIG_NAME = "config.yaml"
LOCAL_CREDENTIALS = Path(".local") / "credentials.json"
SERVER_ENV = "PLEXSPHERE_URL"
TOKEN_FILE_ENV = "PLEXSPHERE_TOKEN_FILE"
PROFILE_ENV = "PLEXCTL_PROFILE"
DEFAULT_PROFILE = "default"


@dataclass
class Flags:
    """The persistent flags, accepted on the root command and on every subcommand."""

    server: str | None = None
    profile: str | None = None
    token_file: Path | None = None
    output: str = "table"


@dataclass(frozen=True)
class Resolved:
    """What a command talks to, and where each part came from (for messages)."""

    server: str
    token: str
    project: str | None
    source: str


def explicit_server(flags: Flags) -> str | None:
    """``--server``, else ``PLEXSPHERE_URL``."""
    return flags.server or os.environ.get(SERVER_ENV) or None


def explicit_token_file(flags: Flags) -> Path | None:
    """``--token-file``, else ``PLEXSPHERE_TOKEN_FILE``."""
    if flags.token_file is not None:
        return flags.token_file
    return Path(os.environ[TOKEN_FILE_ENV]) if os.environ.get(TOKEN_FILE_ENV) else None


def config_path() -> Path:
    return Path(click.get_app_dir(APP_NAME)) / CONFIG_NAME


def ensure_private(path: Path, what: str) -> None:
    """Refuse a credentials file that its group or other users can read or write (exit 3)."""
    try:
        mode = path.stat().st_mode
    except OSError as error:
        raise CredentialsError(f"{what} {path} cannot be read: {error.strerror}.") from error
    if mode & 0o077:
        raise CredentialsError(
            f"{what} {path} is accessible by other users (mode {stat.S_IMODE(mode):04o}); run: chmod 600 {path}"
        )


def read_token_file(path: Path) -> str:
    """The bearer token in ``path`` (surrounding whitespace stripped), after the permission check."""
    ensure_private(path, "token file")
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise CredentialsError(f"token file {path} cannot be read: {error}") from error
    if not token:
        raise CredentialsError(f"token file {path} is empty.")
    return token


def load_config(path: Path) -> dict[str, Any]:
    """The config file as a mapping (empty when absent)."""
    if not path.exists():
        return {}
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise CredentialsError(f"config file {path} cannot be read: {error}") from error
    if loaded is None:
        return {}
    if not isinstance(loaded, dict) or not isinstance(loaded.get("profiles", {}), dict):
        raise CredentialsError(f"config file {path} is not a plexctl config (expected a 'profiles' mapping).")
    return loaded


def save_profile(path: Path, name: str, *, server: str, token: str, project: str | None) -> None:
    """Write (or replace) one profile; the file is created owner-only since it holds a token."""
    config = load_config(path)
    profiles = config.setdefault("profiles", {})
    profile: dict[str, Any] = {"server": server, "token": token}
    if project:
        profile["project"] = project
    profiles[name] = profile
    config.setdefault("current_profile", name)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)  # an existing file keeps its old mode through os.open
        yaml.safe_dump(config, handle, sort_keys=False)


def find_local_credentials(start: Path) -> Path | None:
    """``.local/credentials.json`` in ``start`` or the nearest parent that has one."""
    for directory in (start, *start.parents):
        candidate = directory / LOCAL_CREDENTIALS
        if candidate.is_file():
            return candidate
    return None


def _same_server(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def _local_credentials() -> tuple[Path, dict[str, Any]] | None:
    path = find_local_credentials(Path.cwd())
    if path is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # a half-written file while the server starts: as if absent
    return (path, data) if isinstance(data, dict) and isinstance(data.get("server"), str) else None


def _profile(flags: Flags, config: Mapping[str, Any], path: Path) -> tuple[str | None, dict[str, Any]]:
    profiles: Mapping[str, Any] = config.get("profiles") or {}
    name = flags.profile or os.environ.get(PROFILE_ENV) or config.get("current_profile")
    if name is None:
        return None, {}
    if name not in profiles:
        if flags.profile or os.environ.get(PROFILE_ENV):
            raise InputError(f"no profile {name!r} in {path} (create it with: plexctl login --profile {name} ...)")
        return None, {}
    profile = profiles[name]
    if not isinstance(profile, dict):
        raise CredentialsError(f"profile {name!r} in {path} is not a mapping.")
    return str(name), profile


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _profile_token(profile: Mapping[str, Any], path: Path) -> str | None:
    if _str(profile.get("token")):
        ensure_private(path, "config file")
        return str(profile["token"])
    if _str(profile.get("token_file")):
        return read_token_file(Path(profile["token_file"]).expanduser())
    return None


def resolve(flags: Flags) -> Resolved:
    """Server, token and default project for one command (exit 3 when none is usable)."""
    path = config_path()
    config = load_config(path)
    profile_name, profile = _profile(flags, config, path)

    given_server = explicit_server(flags)
    profile_server = _str(profile.get("server"))
    # A profile's token and project belong to its server: never send them to another one.
    profile_applies = bool(profile) and (
        given_server is None or profile_server is None or _same_server(given_server, profile_server)
    )
    server = given_server or profile_server
    token_file = explicit_token_file(flags)
    token = read_token_file(token_file) if token_file else None
    project: str | None = None
    origin = "flags"
    if profile_applies:
        origin = f"profile {profile_name!r}"
        token = token or _profile_token(profile, path)
        project = _str(profile.get("project"))

    if server is None or token is None or project is None:
        local = _local_credentials()
        if local is not None and (server is None or _same_server(server, local[1]["server"])):
            local_path, data = local
            server = server or data["server"]
            if token is None and _str(data.get("operator_token")):
                ensure_private(local_path, "credentials file")
                token = data["operator_token"]
            project = project or _str(data.get("project_id"))
            origin = str(local_path) if origin == "flags" else origin

    if server is None:
        raise CredentialsError(
            f"no server: pass --server, set {SERVER_ENV}, run 'plexctl login', or start 'make serve' here."
        )
    if token is None:
        raise CredentialsError(f"no token for {server}: pass --token-file or run 'plexctl login'.")
    return Resolved(server=server.rstrip("/"), token=token, project=project, source=origin)
