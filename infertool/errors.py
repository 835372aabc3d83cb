"""The error types the CLI turns into one-line messages and exit codes."""

from __future__ import annotations


class InfertoolError(Exception):
    """A user mistake or an unmet requirement: one line for the user, exit code 2."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        text = " ".join(self.message.split())
        return f"{text} (hint: {self.hint})" if self.hint else text


class CheckFailed(InfertoolError):
    """A check did not pass (validation, accuracy or regression gate): exit code 1.

    `result` carries the full report, so the CLI can still show it.
    """

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None, result: object = None):
        super().__init__(message, hint)
        self.result = result


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's text, for wrapping foreign errors."""
    for line in str(exc).splitlines():
        if line.strip():
            return f"{type(exc).__name__}: {line.strip()}"
    return type(exc).__name__
