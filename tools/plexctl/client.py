"""HTTP to the operator API: bearer auth, Problem+JSON → :class:`ApiError`, cursor walking.

Every answer that is not 2xx becomes an :class:`ApiError` whose exit code
comes from :func:`plexctl.errors.exit_code_for`; transport failures exit 1.
Branching is on the Problem's ``status`` and ``code``, never its text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from typing import IO, Any

import httpx

from plexctl import __version__
from plexctl.errors import CliError, ExitCode, exit_code_for

DEFAULT_TIMEOUT = 30.0
CHUNK = 64 * 1024


class ApiError(CliError):
    """The server answered with an error; ``problem`` is its Problem (synthesized if not Problem+JSON)."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        code = problem.get("code")
        title = problem.get("title") or f"HTTP {status}"
        super().__init__(str(title), exit_code_for(status, code if isinstance(code, str) else None), problem)
        self.status = status

    @property
    def code(self) -> str | None:
        code = self.problem.get("code") if self.problem else None
        return code if isinstance(code, str) else None

    @property
    def transient(self) -> bool:
        """Worth retrying while following an Execution (overload or a passing outage)."""
        return self.status == 429 or self.status >= 500

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = {
                "title": response.reason_phrase or f"HTTP {response.status_code}",
                "status": response.status_code,
                "detail": response.text[:500],
                "correlation_id": response.headers.get("x-correlation-id"),
            }
        body.setdefault("status", response.status_code)
        body.setdefault("correlation_id", response.headers.get("x-correlation-id"))
        return cls(response.status_code, body)


class TransportFailure(CliError):
    """No HTTP answer at all (refused, reset, timed out, bad TLS): exit 1."""

    def __init__(self, server: str, error: httpx.HTTPError) -> None:
        super().__init__(f"cannot reach {server}: {type(error).__name__}: {error}", ExitCode.FAILURE)


class ApiClient:
    """One operator session against ``server`` with a bearer ``token``."""

    def __init__(
        self,
        server: str,
        token: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.server = server.rstrip("/")
        self._transport = transport
        self._http = httpx.Client(
            base_url=self.server,
            timeout=timeout,
            transport=transport,
            headers={"Authorization": f"Bearer {token}", "User-Agent": f"plexctl/{__version__}"},
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """The decoded JSON body of a 2xx answer (``None`` when empty); raises otherwise."""
        query = {key: value for key, value in (params or {}).items() if value is not None}
        try:
            response = self._http.request(method, path, params=query, json=json, headers=headers)
        except httpx.HTTPError as error:
            raise TransportFailure(self.server, error) from error
        if not response.is_success:
            raise ApiError.from_response(response)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as error:
            raise CliError(f"{method} {path}: the server answered {response.status_code} without JSON", 1) from error

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, json: Any = None, headers: Mapping[str, str] | None = None) -> Any:
        return self.request("POST", path, json=json, headers=headers)

    def put(self, path: str, json: Any = None) -> Any:
        return self.request("PUT", path, json=json)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def pages(self, path: str, params: Mapping[str, Any], *, follow: bool) -> Iterator[dict[str, Any]]:
        """``{items, next_cursor?}`` pages; with ``follow``, every page until ``next_cursor`` is absent."""
        query = dict(params)
        while True:
            page = self.get(path, query)
            yield page
            cursor = page.get("next_cursor")
            if not follow or not cursor:
                return
            query["cursor"] = cursor

    def upload(self, url: str, source: IO[bytes], size: int) -> None:
        """Stream ``size`` bytes to a presigned PUT URL (without our bearer: the URL is its own
        credential, and it signs the Content-Length, so the length is sent, never chunked)."""
        try:
            with httpx.Client(timeout=DEFAULT_TIMEOUT, transport=self._transport) as plain:
                response = plain.put(
                    url, content=iter(lambda: source.read(CHUNK), b""), headers={"Content-Length": str(size)}
                )
        except httpx.HTTPError as error:
            raise CliError(f"uploading failed: {type(error).__name__}: {error}", ExitCode.FAILURE) from error
        if not response.is_success:
            raise CliError(f"uploading failed: HTTP {response.status_code} {response.text[:300]}", ExitCode.FAILURE)

    def download(self, url: str, sink: IO[bytes]) -> tuple[int, str]:
        """Stream a presigned URL into ``sink`` (without our bearer: the URL is its own credential).

        Returns the size and hex SHA-256 of what was written.
        """
        hasher, size = hashlib.sha256(), 0
        try:
            with (
                httpx.Client(timeout=DEFAULT_TIMEOUT, transport=self._transport) as plain,
                plain.stream("GET", url) as response,
            ):
                if not response.is_success:
                    response.read()
                    raise CliError(f"downloading the output failed: HTTP {response.status_code}", ExitCode.FAILURE)
                for chunk in response.iter_bytes(CHUNK):
                    hasher.update(chunk)
                    size += len(chunk)
                    sink.write(chunk)
        except httpx.HTTPError as error:
            raise CliError(
                f"downloading the output failed: {type(error).__name__}: {error}", ExitCode.FAILURE
            ) from error
        return size, hasher.hexdigest()
