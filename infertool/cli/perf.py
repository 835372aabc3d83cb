"""bench's performance options (--tune, --profile, --concurrency, --isolate, framework sources), and a
filled-in option group as the arguments that set it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import typer

from infertool.cli import parse


@dataclass
class Perf:
    tune: bool = typer.Option(False, "--tune", help="Search each backend's settings per row with equal short budgets; report what was tried, the best, its speedup over the defaults and the command that reproduces it.")
    tune_precision: Optional[str] = typer.Option(
        None, "--tune-precision", metavar="CALIB_PATH",
        help="--tune also tries precision graphs of an fp32 model (fp16, int8...), calibrated on these inputs (npz, images, ...) "
        "and checked against the model's outputs [default: the model's precision is kept].",
    )
    tune_budget: str = typer.Option("60s", "--tune-budget", metavar="Ts", help="Measuring time per row that --tune shares among the configurations it tries (set-up, compiles and engine builds not counted).")
    profile: bool = typer.Option(False, "--profile", help="Also profile each row in a separate session: time per op type and the slowest nodes / layers.")
    profile_top: int = typer.Option(10, "--profile-top", min=1, help="Nodes listed by --profile.")
    concurrency: int = typer.Option(1, "--concurrency", min=1, help="Also run N sessions / streams at once, one thread each: aggregate throughput and per-request latency.")
    isolate: Optional[bool] = typer.Option(
        None, "--isolate/--no-isolate",
        help="Measure each row in a fresh process of its own, so no row runs after another in the same process [default: on where more than one row runs on a GPU].",
    )


@dataclass
class Source:
    source: Optional[str] = typer.Option(None, "--source", metavar="SOURCE", help="Framework backends (torch, torch-compile): the model the ONNX came from, as convert takes it (file.py:factory, .pt, .pt2).")
    weights: Optional[Path] = typer.Option(None, "--weights", help="State dict loaded into the --source factory's model.")
    trust_model: bool = typer.Option(False, "--trust-model", help="Allow loading a --source that runs code from the model file (pickled modules).")
    compile_mode: Optional[str] = typer.Option(None, "--compile-mode", metavar="MODE", help="torch-compile: torch.compile mode (default, reduce-overhead, max-autotune, max-autotune-no-cudagraphs) [default: torch's].")
    channels_last: Optional[bool] = typer.Option(None, "--channels-last/--no-channels-last", help="torch backends: channels_last memory format [default: on a GPU, for convolutional models].")

    def to_options(self):
        from infertool.backends.base import SourceOptions
        from infertool.backends.torch import COMPILE_MODES

        mode = self.compile_mode and parse.choice(self.compile_mode, COMPILE_MODES, "--compile-mode")
        return SourceOptions(self.source, self.weights, self.trust_model, mode, self.channels_last)


def group_args(group: object, skip: tuple[str, ...] = ()) -> list[str]:
    """The options that set a filled-in option group's non-default values, as typed on a command line."""
    args: list[str] = []
    for item in dataclasses.fields(group):
        info, value = item.default, getattr(group, item.name)
        if item.name in skip or value == info.default or value is None:
            continue
        flag = info.param_decls[0]
        if "/" in flag:
            on, off = flag.split("/")
            args.append(on if value else off)
        elif isinstance(value, bool):
            args += [flag] if value else []
        elif isinstance(value, list):
            args += [part for v in value for part in (flag, str(v))]
        else:
            args += [flag, str(value)]
    return args
