"""Exit codes (SPEC §15) and the one exception type that carries them.

Scripts branch on the exit code, so the mapping from a Problem's ``status`` and
``code`` to an exit code lives here and nowhere else.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

import click


class ExitCode(IntEnum):
    OK = 0
    FAILURE = 1  # transport, 5xx, 404, 409, 429, an Execution that did not succeed
    USAGE = 2  # local input errors, 400, 422
    CREDENTIALS = 3  # missing or insecure credentials, 401
    FORBIDDEN = 4  # 403 other than rebac_denied
    REBAC_DENIED = 77  # 403 with code == "rebac_denied"


def exit_code_for(status: int, code: str | None) -> ExitCode:
    """The exit code for an HTTP error answer.

    400 and 422 are input the operator can fix by changing the command line
    (a bad selector, an empty cohort, parameters the action refuses), hence 2.
    """
    if status == 401:
        return ExitCode.CREDENTIALS
    if status == 403:
        return ExitCode.REBAC_DENIED if code == "rebac_denied" else ExitCode.FORBIDDEN
    if status in (400, 422):
        return ExitCode.USAGE
    return ExitCode.FAILURE


class CliError(click.ClickException):
    """An error plexctl reports and exits with; ``problem`` is the server's Problem, if any.

    A :class:`click.ClickException` so click's standalone mode prints it (see
    :meth:`show`, overridden by the CLI to honour ``--output``) and exits with
    ``exit_code``.
    """

    def __init__(self, message: str, exit_code: int, problem: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        # click declares ``exit_code`` per class; standalone mode reads it from the instance.
        self.exit_code = int(exit_code)  # type: ignore[misc]
        self.problem = problem
        self.output_format = "table"

    def show(self, file: Any = None) -> None:
        from plexctl.render import show_error  # render imports rich; keep this module light

        show_error(self, self.output_format)


class CredentialsError(CliError):
    """No usable server or token, or a token readable by other users (exit 3)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.CREDENTIALS)


class InputError(CliError):
    """A local input error found after click's own parsing (exit 2)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.USAGE)
