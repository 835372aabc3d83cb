"""The `infertool` command: root options, sub-commands, and errors turned into exit codes."""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from infertool import __version__
from infertool.cli import bench, build_engine, cmdline, convert, debug, doctor, helptext, quantize, report, run, sweep
from infertool.cli.console import err
from infertool.errors import InfertoolError, first_line

INTERNAL_ERROR = 3

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
) -> None:
    """Exit codes: 0 ok, 1 a check failed (validation, accuracy, regression gate), 2 usage or input error, 3 internal error."""


for module in (convert, quantize, build_engine, run, bench, report, sweep, doctor, debug):
    module.register(app)


def _command():
    """The click command, with its help tidied."""
    return helptext.tidy(typer.main.get_command(app))


def normalize_argv(argv: list[str]) -> tuple[list[str], bool]:
    """`--debug` anywhere; `--json` / `--csv` / `--markdown` without a path mean stdout."""
    return cmdline.normalize(argv, _command())


def main(argv: list[str] | None = None) -> None:
    raw = sys.argv[1:] if argv is None else argv
    debug = "--debug" in raw
    try:
        command = _command()
        args, debug = cmdline.normalize(raw, command)
        command(args=args, prog_name="infertool")
    except InfertoolError as exc:
        if debug:
            raise
        err.print(f"[red]error:[/] {escape(exc.one_line())}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("[red]interrupted[/]")
        sys.exit(130)
    except Exception as exc:  # a bug or an unexpected failure below us: still one line
        if debug:
            raise
        err.print(
            f"[red]error:[/] internal error: {escape(first_line(exc))} "
            "(hint: rerun with --debug for the traceback, and report it)",
            highlight=False, soft_wrap=True,
        )
        sys.exit(INTERNAL_ERROR)
