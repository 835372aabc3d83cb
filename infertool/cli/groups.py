"""Option groups: dataclasses whose fields are typer options, declared once and shared.

A command annotates a parameter with a group; `@command` expands the group into its options
for typer and hands the command a filled-in instance. Each group turns itself into the core's
option objects (`to_...`), so all text parsing stays in the CLI layer.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, get_type_hints

import typer

from infertool import files
from infertool.cli import console, helptext, parse
from infertool.errors import CheckFailed, InfertoolError
from infertool.text import shorten

MAX_SEED = 2**63 - 1
MAX_IMAGE_SIDE = 65_536
MAX_SAMPLES = 1_000_000  # calibration or evaluation samples
DEFAULT_TIMEOUT = 600.0  # seconds one inference may take
MAX_TIMEOUT = 24 * 3600.0
JSON_HELP = "Write the result as JSON: to stdout with a bare --json (or --json -), else to PATH."


def command(func: Callable) -> Callable:
    """Expand parameters annotated with an option group into the group's options."""
    hints = get_type_hints(func)
    params, groups = [], {}
    for param in inspect.signature(func).parameters.values():
        kind = hints.get(param.name)
        if dataclasses.is_dataclass(kind):
            groups[param.name] = kind
            group_hints = get_type_hints(kind)
            params += [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=group_hints[f.name])
                       for f in dataclasses.fields(kind)]
        else:
            params.append(param.replace(annotation=kind, kind=inspect.Parameter.KEYWORD_ONLY))
    params = [p.replace(default=helptext.declared(p.default, p.annotation, p.name)) for p in params]

    @functools.wraps(func)
    def wrapper(**values: object) -> object:
        values = _grouped(groups, values)
        for group in values.values():
            if isinstance(group, Output):
                group.apply()
        for group in values.values():
            if isinstance(group, Output) and group.json_path is not None:  # refused before the work, not after
                files.check_output(group.json_path, group.force)
        with files.all_or_nothing(keep_on=(CheckFailed, BrokenPipeError)):  # a failed check keeps its report file; a closed stdout, what it measured
            return func(**values)

    wrapper.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    wrapper.groups = groups  # type: ignore[attr-defined]
    return wrapper


def _grouped(groups: dict[str, type], values: dict) -> dict:
    """A command's flat option values with each group's gathered into a filled-in group."""
    values = dict(values)
    for name, kind in groups.items():
        values[name] = kind(**{f.name: values.pop(f.name) for f in dataclasses.fields(kind)})
    return values


def read_args(func: Callable, argv: list[str], what: str) -> dict:
    """The arguments a @command would be called with for ARGV (its groups filled in), read by the same
    parser and converters, running nothing; a mistake in them is one line naming `what` they came from."""
    from typer.main import get_command

    captured: dict = {}

    def capture(**values: object) -> None:
        captured.update(values)

    capture.__signature__ = func.__signature__  # type: ignore[attr-defined]
    capture.__annotations__ = func.__annotations__
    reader = typer.Typer(add_completion=False)
    reader.command()(capture)
    try:
        get_command(reader).main(args=list(argv), prog_name=func.__name__, standalone_mode=False)
    except Exception as exc:  # click's usage errors, in the one-line form
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        raise InfertoolError(f"{what}: {shorten(message, 240)}", hint=f"see 'infertool {func.__name__} --help'") from exc
    return _grouped(func.groups, captured)  # type: ignore[attr-defined]


@dataclass
class Output:
    json_out: Optional[str] = typer.Option(None, "--json", metavar="[PATH]", help=JSON_HELP)
    force: bool = typer.Option(False, "--force", "-f", help="Overwrite existing output files.")
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Warnings and errors only on stderr: no progress, notes or 'wrote' lines.")
    verbose: bool = typer.Option(False, "--verbose", help="Let the logs of ONNX Runtime, TensorRT and the exporters through to stderr.")

    def apply(self) -> None:
        console.configure(self.quiet, self.verbose)

    @property
    def json_path(self) -> Path | None:
        return Path(self.json_out) if self.json_out and self.json_out != "-" else None


@dataclass
class Generated:
    """The shapes, seed and integer range of generated inputs."""

    input_shape: Optional[List[str]] = typer.Option(
        None, "--input-shape", metavar="NAME:DIMS",
        help="Input shape, e.g. x:1x3x224x224 (repeatable; the name may be left out for a single-input model). "
        "bench sweeps a list: ids:1x32,1x128.",
    )
    seed: int = typer.Option(0, "--seed", min=0, max=MAX_SEED, help="Seed of generated inputs.")
    int_range: Optional[List[str]] = typer.Option(
        None, "--int-range", metavar="[NAME:]LOW:HIGH",
        help="Range [LOW, HIGH) of generated integer inputs, for all or one input (repeatable) [default: 0:100; inputs named like masks 1, token types 0:2, sample rates 16000].",
    )

    def shapes(self) -> dict:
        return parse.named_shapes(self.input_shape or [])


@dataclass
class Image:
    """How image and audio files become tensors."""

    preprocess: Optional[str] = typer.Option(
        None, "--preprocess", metavar="PRESET",
        help="Image preset: imagenet (the default for images), inception, unit (x/255), raw (0-255), paddleocr (BGR, (x/255-0.5)/0.5, "
        "sides a multiple of 32), paddleocr-cls / paddleocr-rec (48x192 / 48x320 text crops, right-padded); audio preset: waveform "
        "(the default for .wav), logmel (25 ms / 10 ms log-mel power, mel bands from the model's input, else 80).",
    )
    resize: Optional[int] = typer.Option(None, "--resize", min=1, max=MAX_IMAGE_SIDE, help="Resize the shorter image side to this many pixels first.")
    crop: Optional[str] = typer.Option(None, "--crop", metavar="HxW", help="Center crop [default: the model's input size, else the preset's].")
    mean: Optional[str] = typer.Option(None, "--mean", metavar="R,G,B", help="Per-channel mean subtracted after scaling.")
    std: Optional[str] = typer.Option(None, "--std", metavar="R,G,B", help="Per-channel std divided by after the mean.")
    bgr: bool = typer.Option(False, "--bgr", help="Feed channels as BGR instead of RGB.")
    layout: Optional[str] = typer.Option(None, "--layout", metavar="nchw|nhwc", help="Image tensor layout [default: read off the model's input shape].")
    sample_rate: int = typer.Option(16000, "--sample-rate", min=1, metavar="HZ", help="Audio: the model's sample rate; .wav files at another rate are resampled, several channels mixed to mono.")

    def to_audio(self):
        from infertool.inputs.audio import AUDIO_PRESETS

        pre = AUDIO_PRESETS.get(self.preprocess or "waveform", AUDIO_PRESETS["waveform"])
        return dataclasses.replace(pre, sample_rate=self.sample_rate)

    def media(self) -> str | None:
        from infertool.inputs.audio import AUDIO_PRESETS

        return None if self.preprocess is None else "audio" if self.preprocess in AUDIO_PRESETS else "image"

    def to_preprocess(self):
        from infertool.inputs.audio import AUDIO_PRESETS
        from infertool.inputs.images import PRESETS

        name = "imagenet" if self.preprocess in (None, *AUDIO_PRESETS) else self.preprocess
        pre = PRESETS[parse.choice(name, [*PRESETS, *AUDIO_PRESETS], "--preprocess")]
        if self.layout is not None:
            parse.choice(self.layout, ("nchw", "nhwc"), "--layout")
        changes: dict = {"bgr": self.bgr, "layout": self.layout}
        if self.resize is not None:
            changes["resize"] = self.resize
        if self.crop is not None:
            size = parse.dims(self.crop, "--crop")
            if len(size) not in (1, 2) or max(size) > MAX_IMAGE_SIDE:
                raise InfertoolError(f"malformed --crop '{shorten(self.crop)}'", hint=f"write HxW up to {MAX_IMAGE_SIDE}, e.g. 224x224")
            changes["crop"] = (size[0], size[-1])
        if self.mean is not None:
            changes["mean"] = parse.floats(self.mean, "--mean")
        if self.std is not None:
            changes["std"] = parse.floats(self.std, "--std")
        return dataclasses.replace(pre, **changes)


def data_options(value: str | None, option: str, generated: Generated, image: Image, generators: tuple[str, ...] = parse.GENERATORS):
    """InputOptions for `PATH` or the name of generated data (one scheme for every data option),
    with the shared groups; None stays None."""
    from infertool.inputs.feeds import InputOptions

    if value is None:
        return None
    path, generator = parse.data_source(value, option, generators)
    return InputOptions(
        path, generator, generated.shapes(), generated.seed, parse.int_ranges(generated.int_range or []), image.to_preprocess(), image.to_audio(), image.media(),
    )


@dataclass
class Inputs:
    """Where run and bench inputs come from."""

    inputs: str = typer.Option(
        "random", "--inputs", metavar="PATH|random|zeros",
        help="Input data: .npz (by input name), .npy, a test_data_set_N dir of input_K.pb, an image or a folder of images; "
        "or generated: random (seeded) or zeros.",
    )

    def to_options(self, generated: Generated, image: Image):
        return data_options(self.inputs, "--inputs", generated, image)


@dataclass
class Calibration:
    calib_data: Optional[str] = typer.Option(
        None, "--calib-data", metavar="PATH|random",
        help="Calibration inputs, read as run's --inputs (npz, .npy, .pb dir, images); random for speed tests only.",
    )
    calib_method: str = typer.Option("minmax", "--calib-method", metavar="minmax|entropy|percentile", help="int8 calibration (fp8 always uses onnxruntime's distribution method).")
    calib_samples: Optional[int] = typer.Option(None, "--calib-samples", min=1, max=MAX_SAMPLES, help="Calibration samples to use [default: all; 32 with random].")

    def to_options(self, generated: Generated, image: Image):
        return data_options(self.calib_data, "--calib-data", generated, image, ("random",))


@dataclass
class Conversion:
    """How quantize and debug precision convert a model, and the samples its accuracy is judged on."""

    target: str = typer.Option(
        "tensorrt", "--target", metavar="tensorrt|ort",
        help="Runtime the graph is for. tensorrt: symmetric Q/DQ on Conv/MatMul/Gemm inputs, float biases (bench shows int8-qdq); "
        "ONNX Runtime's CPU provider cannot fuse it and often runs it slower than fp32. ort: onnxruntime's CPU defaults (int8-ort), the one for the CPU.",
    )
    calib_cache: Optional[Path] = typer.Option(None, "--calib-cache", help="Tensor ranges cache: reused when it exists, written after calibrating otherwise.")
    per_channel: bool = typer.Option(True, "--per-channel/--per-tensor", help="Weight scales per output channel.")
    exclude_op_types: Optional[List[str]] = typer.Option(None, "--exclude-op-types", metavar="OP[,OP]", help="Op types to keep in fp32 (repeatable; @FILE reads one a line).")
    exclude_nodes: Optional[List[str]] = typer.Option(
        None, "--exclude-nodes", metavar="NAME[,NAME]", help="Node names to keep in fp32 (repeatable; @FILE reads one a line, e.g. debug precision's keep list).",
    )
    keep_io_types: bool = typer.Option(True, "--keep-io-types/--no-keep-io-types", help="fp16/bf16: keep graph inputs and outputs fp32.")
    block_fragile: bool = typer.Option(True, "--block-fragile/--no-block-fragile", help="fp16/bf16: keep the reductions, Exp, Pow and Sqrt of decomposed Softmax/LayerNorm in fp32.")
    eval_data: Optional[str] = typer.Option(
        None, "--eval-data", metavar="PATH|random|zeros", help="Evaluation inputs [default: held-out calibration samples (int8/fp8), the calibration set, else generated].",
    )
    holdout: bool = typer.Option(
        True, "--holdout/--no-holdout", help="Without --eval-data: evaluate int8/fp8 on every 5th --calib-data sample, not calibrated on; --no-holdout: on the calibration set (optimistic).",
    )
    eval_samples: int = typer.Option(8, "--eval-samples", min=1, max=MAX_SAMPLES, help="Generated evaluation samples.")
    eval_backend: str = typer.Option(
        "ort-cpu", "--eval-backend", metavar="NAME", help="Backend that runs both models (fp16/bf16 storage is emulated on ort-cpu; ort-cuda where the CPU lacks kernels).",
    )
    min_cosine: Optional[float] = typer.Option(
        None, "--min-cosine", help="Cosine similarity every output of every sample must reach (where not within atol/rtol) [default: the precision's tolerance].",
    )
    criterion: str = typer.Option(
        "auto", "--criterion", metavar="auto|values|classes|ctc",
        help="How each output is judged, sample by sample. values: within the tolerance (scaled by the output's magnitude) or the cosine; "
        "classes: the arg-max agrees at every position (classifier, CTC heads); ctc: the greedy CTC decoding (blank 0) agrees; "
        "auto: classes for outputs of probabilities, values for the rest.",
    )
    min_top1: Optional[float] = typer.Option(
        None, "--min-top1", help="Share of samples (0-1) whose arg-max must agree; judges class-score outputs by arg-max [default: 0.99 for classes].",
    )

    def to_options(self, precision: str, path: Path, calibration: Calibration, generated: Generated, image: Image, force: bool, **gates):
        """The conversion as the pipelines take it; `gates`: the command's own QuantizeOptions fields."""
        from infertool.agreement import KINDS
        from infertool.backends import registry
        from infertool.pipelines.quantize import QuantizeOptions
        from infertool.precision.settings import PrecisionSettings

        registry.get(self.eval_backend)
        settings = PrecisionSettings(
            precision=precision, target=self.target, keep_io_types=self.keep_io_types, block_fragile=self.block_fragile,
            exclude_op_types=parse.names(self.exclude_op_types), exclude_nodes=parse.names(self.exclude_nodes),
            calib_method=calibration.calib_method, per_channel=self.per_channel, calib_cache=self.calib_cache, replace_cache=force,
        )
        return QuantizeOptions(
            output=path, settings=settings, calib=calibration.to_options(generated, image), calib_samples=calibration.calib_samples,
            eval=data_options(self.eval_data, "--eval-data", generated, image), eval_samples=self.eval_samples, eval_backend=self.eval_backend,
            min_cosine=parse.finite(self.min_cosine, "--min-cosine", -math.inf), force=force, generated=data_options("random", "--input-shape", generated, image),
            min_top1=parse.finite(self.min_top1, "--min-top1", 0.0, 1.0), criterion=parse.choice(self.criterion, KINDS, "--criterion"), holdout=self.holdout, **gates,
        )


@dataclass
class Truth:
    labels_csv: Optional[Path] = typer.Option(
        None, "--labels-csv", metavar="FILE",
        help="Ground truth, sample,class lines (sample: a file name of the inputs folder, or a row index): report top-1 / top-5 accuracy beside agreement.",
    )


@dataclass
class Limits:
    timeout: float = typer.Option(
        DEFAULT_TIMEOUT, "--timeout", metavar="SECONDS",
        help="Stop one inference that runs longer than this (an endless Loop); 0: no limit.",
    )

    def seconds(self) -> float | None:
        return parse.finite(self.timeout, "--timeout", 0, MAX_TIMEOUT) or None


@dataclass
class Device:
    device: int = typer.Option(0, "--device", min=0, max=1023, help="CUDA device index.")
