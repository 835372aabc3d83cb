"""`build-engine`: profiles checked against the model, the engine built by the backend's TensorRT
flavour, and the precision stage's graph (TensorRT 11, TensorRT-RTX) checked for accuracy on inputs
of the profile's shapes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from infertool import environment, onnx_io
from infertool.agreement import Rule
from infertool.backends import registry
from infertool.engine.build import BuildOptions
from infertool.engine.profiles import ShapeProfile, resolve_profiles
from infertool.errors import CheckFailed, InfertoolError
from infertool.files import check_output
from infertool.inputs.feeds import FeedSource, InputOptions
from infertool.onnx_io import ModelInfo
from infertool.pipelines.accuracy import evaluate
from infertool.records.build import BuildResult
from infertool.records.quantize import AccuracyReport
from infertool.reporting import Reporter
from infertool.tensors import bind_unnamed
from infertool.vocabulary import tolerance_class

EVALUATION_SAMPLES = 8
REVIEW_BACKEND = "ort-cpu"


@dataclass(frozen=True)
class BuildRequest:
    output: Path
    options: BuildOptions  # profiles are filled in here; the flavour by the backend
    profiles: tuple[dict, ...] = ()  # name -> (min, opt, max), as given
    shapes: dict = field(default_factory=dict)  # --input-shape values (name or None -> dims) for inputs without a profile
    batch: int | None = None
    generated: InputOptions = field(default_factory=InputOptions)  # seed and int range of the precision stage's check
    backend: str = "trt"  # a backend that builds engines (capabilities.builds_engines)
    gate: bool = True  # the precision stage's graph must pass quantize's rule, else nothing is written


def _review(model: ModelInfo, profiles: tuple[ShapeProfile, ...], generated: InputOptions, gate: bool, reporter: Reporter):
    """The accuracy check of the precision stage, on calibration data or on generated inputs of the
    first profile's opt shapes, judged by quantize's rule: a failure stops the build (exit 1,
    nothing written) unless `gate` is off; where it cannot run, a note says nothing was checked."""
    opt = {name: shapes[1] for name, shapes in profiles[0].shapes.items()} if profiles else {}

    def review(original: Path, converted: Path, precision: str, samples: dict | None) -> dict:
        data = "the calibration set"
        if samples is None:
            data = f"{EVALUATION_SAMPLES} generated samples (seed {generated.seed})"
            samples = FeedSource(list(model.inputs), replace(generated, path=None, shapes=opt)).feeds(EVALUATION_SAMPLES)
        try:
            report = evaluate(original, converted, converted, list(model.inputs), samples, data, Rule.of(tolerance_class(precision)), REVIEW_BACKEND, reporter)
        except InfertoolError as exc:
            report = AccuracyReport(REVIEW_BACKEND, data, EVALUATION_SAMPLES, unavailable=exc.one_line())
        if report.judgement is None:
            reporter.note(f"the {precision} graph's accuracy was not checked (nothing judged it): {report.unavailable}")
        elif gate and not report.judgement.passed:
            raise CheckFailed(
                f"the {precision} graph fails its accuracy gate ({report.judgement.summary()}); no engine was written",
                hint=f"infertool debug precision {model.path.name} -p {precision} finds nodes to keep in float; --no-gate builds it anyway",
            )
        return {"accuracy": report.to_dict()}

    return review


def build(model_path: Path, request: BuildRequest, reporter: Reporter) -> BuildResult:
    check_output(request.output, request.options.force)
    backend = registry.get(request.backend)
    if not backend.capabilities.builds_engines:
        engines = [n for n in registry.names() if registry.get(n).capabilities.builds_engines]
        raise InfertoolError(f"backend {backend.name} does not build engines", hint=f"choose {' or '.join(engines)}")
    backend.check_builder()  # fail first, naming the extra, where the library is missing
    model = onnx_io.describe(model_path)
    notes: list[str] = []
    named = bind_unnamed(request.shapes, [s.name for s in model.inputs], "--input-shape")
    profiles = tuple(resolve_profiles(list(model.inputs), list(request.profiles), named, request.batch, notes))
    for note in notes:
        reporter.note(note)
    options = replace(request.options, profiles=profiles, precision=request.options.precision or model.precision)
    result = backend.build_engine(model, request.output, options, reporter, _review(model, profiles, request.generated, request.gate, reporter))
    return replace(result, notes=(*notes, *result.notes), env=environment.fingerprint())
