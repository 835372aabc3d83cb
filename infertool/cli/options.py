"""Options several commands share, defined once."""

from __future__ import annotations

from pathlib import Path
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


inputs_option = typer.Option(
    None, "--inputs", metavar="PATH",
    help="Input data: .npz (by input name), .npy, a test_data_set_N dir of input_K.pb, an image or a folder of images.",
)
input_data_option = typer.Option("random", "--input-data", metavar="random|zeros", help="Generated inputs when --inputs is not given.")
preprocess_option = typer.Option("imagenet", "--preprocess", metavar="PRESET", help="Image preset: imagenet, inception, unit (x/255), raw (0-255).")
resize_option = typer.Option(None, "--resize", help="Resize the shorter image side to this many pixels first.")
crop_option = typer.Option(None, "--crop", metavar="HxW", help="Center crop [default: the model's input size, else the preset's].")
mean_option = typer.Option(None, "--mean", metavar="R,G,B", help="Per-channel mean subtracted after scaling.")
std_option = typer.Option(None, "--std", metavar="R,G,B", help="Per-channel std divided by after the mean.")
bgr_option = typer.Option(False, "--bgr", help="Feed channels as BGR instead of RGB.")
layout_option = typer.Option(None, "--layout", metavar="nchw|nhwc", help="Image tensor layout [default: read off the model's input shape].")


def _floats(text: str, option: str) -> tuple[float, ...]:
    from infertool.errors import InfertoolError

    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise InfertoolError(f"malformed {option} '{text}'", hint="give three comma-separated numbers, e.g. 0.485,0.456,0.406")
    return values


def input_options(
    inputs: Optional[Path], input_data: str, input_shape: Optional[list[str]], seed: int, int_range: str,
    preprocess: str, resize: Optional[int], crop: Optional[str], mean: Optional[str], std: Optional[str],
    bgr: bool, layout: Optional[str],
):
    """The shared input options -> InputOptions."""
    from dataclasses import replace

    from infertool.errors import InfertoolError
    from infertool.inputs import PRESETS, InputOptions, parse_int_range
    from infertool.specs import parse_dims, parse_named_shapes

    if input_data not in ("random", "zeros"):
        raise InfertoolError(f"unknown --input-data '{input_data}'", hint="use random or zeros, or give --inputs PATH")
    if preprocess not in PRESETS:
        raise InfertoolError(f"unknown --preprocess '{preprocess}'", hint=f"choose from {', '.join(PRESETS)}")
    if layout not in (None, "nchw", "nhwc"):
        raise InfertoolError(f"unknown --layout '{layout}'", hint="use nchw or nhwc")
    pre = PRESETS[preprocess]
    if resize is not None:
        pre = replace(pre, resize=resize)
    if crop is not None:
        dims = parse_dims(crop, "--crop")
        if len(dims) not in (1, 2):
            raise InfertoolError(f"malformed --crop '{crop}'", hint="write HxW, e.g. 224x224")
        pre = replace(pre, crop=(dims[0], dims[-1]))
    if mean is not None:
        pre = replace(pre, mean=_floats(mean, "--mean"))
    if std is not None:
        pre = replace(pre, std=_floats(std, "--std"))
    pre = replace(pre, bgr=bgr, layout=layout)
    return InputOptions(inputs, input_data, parse_named_shapes(input_shape or []), seed, parse_int_range(int_range), pre)
