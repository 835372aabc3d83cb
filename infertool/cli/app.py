"""The `infertool` command: root options, sub-commands, and errors turned into exit codes."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
from collections.abc import Iterator

import typer
from rich.markup import escape

from infertool import __version__, files
from infertool.cli import bench, build_engine, cmdline, convert, debug, doctor, helptext, optimize, quantize, report, run, sweep
from infertool.cli.console import err
from infertool.errors import InfertoolError, first_line
from infertool.text import printable, shorten

try:  # typer >= 0.22 carries its own copy of click
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - older typer on click itself
    from click import exceptions as click_errors
ABORTS = (typer.Abort, getattr(click_errors, "Abort", typer.Abort))  # click turns EOFError into Abort

INTERNAL_ERROR = 3
PIPE_CLOSED = 128 + signal.SIGPIPE  # what a shell reports for a tool whose output pipe was closed

app = typer.Typer(
    name="infertool",
    help="Convert Keras / PyTorch models to ONNX, build TensorRT engines, and benchmark ONNX Runtime "
    "against TensorRT on the same graph and inputs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"infertool {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of one-line errors (also accepted after the command)."),
    verbose: bool = typer.Option(False, "--verbose", help="On an error, also print the underlying library's own message (also accepted after the command)."),
) -> None:
    """Exit codes: 0 ok, 1 a check failed (validation, accuracy, regression gate), 2 usage or input error, 3 internal error."""


for module in (convert, quantize, build_engine, run, bench, report, sweep, optimize, doctor, debug):
    module.register(app)


def _command(argv: list[str]):
    """The click command, with its help tidied; bench and run with the backends' own options where they run."""
    for module in (bench, run):
        if module.__name__.rpartition(".")[2] in argv:
            module.with_backend_options(app)
    return helptext.tidy(typer.main.get_command(app))


def normalize_argv(argv: list[str]) -> tuple[list[str], bool]:
    """`--debug` anywhere; `--json` / `--csv` / `--markdown` without a path mean stdout."""
    return cmdline.normalize(argv, _command(argv))


@contextlib.contextmanager
def _signals() -> Iterator[None]:
    """SIGTERM (a CI timeout, `kill`) interrupts like Ctrl-C: staged files are cleaned up, exit 130."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, files.on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _error(text: str, detail: str | None, verbose: bool, code: int) -> None:
    err.print(f"[red]error:[/] {escape(text)}", highlight=False, soft_wrap=True)
    if verbose and detail:
        err.print(f"  detail: {escape(printable(detail))}", highlight=False, soft_wrap=True)
    sys.exit(code)


def _usage_error(exc: click_errors.ClickException, verbose: bool) -> None:
    if isinstance(exc, click_errors.NoArgsIsHelpError):  # the help was printed already
        sys.exit(2)
    ctx = getattr(exc, "ctx", None)
    where = f"infertool {ctx.command_path.partition(' ')[2]}".strip() if ctx is not None else "infertool"
    _error(f"{shorten(exc.format_message(), 240)} (hint: see '{where} --help')", None, verbose, 2)


def _run(command, args: list[str]) -> int:
    """The command's exit code. An error raised once a signal came (an import failing halfway, say)
    is the interrupt. Where the KeyboardInterrupt crossed code run through PyRun_* (pybind11's
    py::exec), CPython would kill itself with SIGINT at exit instead of exiting 130: `main` then
    runs `pass` through PyRun_SimpleString, which clears that mark."""
    files.interrupted = False
    try:
        with _signals():
            return command(args=args, prog_name="infertool", standalone_mode=False)
    except Exception:
        if files.interrupted:
            raise KeyboardInterrupt from None
        raise


def main(argv: list[str] | None = None) -> None:
    raw = sys.argv[1:] if argv is None else argv
    debug, verbose = "--debug" in raw, "--verbose" in raw
    code = 0
    try:
        command = _command(raw)
        args, debug = cmdline.normalize(raw, command)
        code = _run(command, args)
    except InfertoolError as exc:
        if debug:
            raise
        _error(exc.one_line(), exc.detail, verbose, exc.exit_code)
    except click_errors.ClickException as exc:
        _usage_error(exc, verbose)
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:  # stdout's reader went away (`| head`): the files written stay; nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(PIPE_CLOSED)
    except Exception as exc:  # a bug or an unexpected failure below us (EOFError arrives as Abort): still one line
        if debug:
            raise
        cause = (exc.__cause__ or exc) if isinstance(exc, ABORTS) else exc
        _error(
            f"internal error: {shorten(first_line(cause), 200)} (hint: rerun with --debug for the traceback, and report it)",
            None, verbose, INTERNAL_ERROR,
        )
    if code == 130:  # typer turns KeyboardInterrupt (and so SIGTERM) into exit code 130
        ctypes.pythonapi.PyRun_SimpleString(b"pass")  # see _run
        err.print("[red]interrupted[/]")
    if isinstance(code, int) and code:
        sys.exit(code)
