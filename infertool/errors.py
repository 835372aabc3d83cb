"""The error types, one per exit code; the CLI turns each into one line and its code.

| exit | type               | meaning                                                        |
|------|--------------------|----------------------------------------------------------------|
| 0    | -                  | done                                                           |
| 1    | CheckFailed        | a check ran and failed (parity, accuracy, agreement, gate);    |
|      |                    | nothing is written                                             |
| 2    | InfertoolError     | a usage or input mistake, or an unmet requirement              |
| 2    | MissingDependency  | an optional package is absent; the hint names its pip extra    |
| 2    | BackendFailure     | a runtime (ONNX Runtime, TensorRT) failed on this model/input  |
| 2    | RuntimeCrashed     | a runtime's process died; what else was measured is kept       |
| 3    | anything else      | a bug in infertool                                             |
"""

from __future__ import annotations

from infertool.text import printable, shorten

MESSAGE_LIMIT = 300  # characters of one error line's message (the hint comes on top)


class InfertoolError(Exception):
    """A user mistake or an unmet requirement: one line for the user, exit code 2.

    `message` says what is wrong in infertool's words and `hint` what to do; `detail` keeps a
    library's own text (ONNX Runtime's status, numpy's complaint) for `--verbose`.
    """

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None, detail: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.detail = detail

    def one_line(self) -> str:
        text = shorten(" ".join(self.message.split()), MESSAGE_LIMIT)
        return f"{text} (hint: {printable(self.hint)})" if self.hint else text

    def __reduce__(self):  # pickled whole (a child process sends it back): hint, detail and result included
        return _restore, (type(self), dict(self.__dict__))


def _restore(kind: type, state: dict) -> InfertoolError:
    error = kind.__new__(kind)
    Exception.__init__(error, state.get("message", ""))
    error.__dict__.update(state)
    return error


class MissingDependency(InfertoolError):
    """An optional package is not installed; `hint` says how to install it."""


class BackendFailure(InfertoolError):
    """A runtime failed on this model or these inputs (its own error, not infertool's)."""


class InferenceFailed(BackendFailure):
    """A runtime loaded the model and failed while running it on these inputs (not a kernel it lacks,
    not memory): where the reference model ran on the same inputs, the model is at fault."""


class CheckFailed(InfertoolError):
    """A check did not pass (validation, accuracy or regression gate): exit code 1.

    `result` carries the full report, so the CLI can still show it.
    """

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None, result: object = None, detail: str | None = None):
        super().__init__(message, hint, detail)
        self.result = result


class RuntimeCrashed(CheckFailed):
    """A runtime's process died (a segfault, the OOM killer) while the rest went on: exit code 2, as a
    runtime's failure; `result` still carries what was measured, so the CLI can show it."""

    exit_code = 2


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's text, for wrapping foreign errors."""
    for line in str(exc).splitlines():
        if line.strip():
            return f"{type(exc).__name__}: {line.strip()}"
    return type(exc).__name__
