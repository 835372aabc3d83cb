"""Options several commands share, defined once."""

from __future__ import annotations

from typing import Optional

import typer

JSON_HELP = "Write the result as JSON: to stdout with a bare --json, or to PATH (ending in .json)."

json_option = typer.Option(None, "--json", metavar="[PATH]", help=JSON_HELP)
quiet_option = typer.Option(False, "--quiet", "-q", help="No progress or notes on stderr.")
force_option = typer.Option(False, "--force", "-f", help="Overwrite existing output files.")
input_shape_option = typer.Option(
    None, "--input-shape", metavar="NAME:DIMS",
    help="Input shape, e.g. x:1x3x224x224 (repeatable; the name may be left out for a single-input model).",
)
seed_option = typer.Option(0, "--seed", help="Seed of generated inputs.")
int_range_option = typer.Option("0:100", "--int-range", metavar="LOW:HIGH", help="Range [LOW, HIGH) of generated integer inputs (token ids).")

OptionalStr = Optional[str]
