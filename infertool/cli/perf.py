"""bench's performance options (--tune, --profile, --concurrency, --isolate), and a
filled-in option group as the arguments that set it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

import typer


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
