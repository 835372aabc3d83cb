"""`convert`: a source model -> validated ONNX, through the exporter of its framework (imported lazily)."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

from infertool import environment, onnx_io
from infertool.errors import CheckFailed, InfertoolError
from infertool.exporters.base import ExportOptions
from infertool.files import file_sha256, staged_output
from infertool.precision.reshapes import explicit_note, explicit_sizes
from infertool.records.convert import ConvertResult
from infertool.records.model_file import ModelFile
from infertool.reporting import Reporter


@dataclass(frozen=True)
class ConvertOptions:
    output: Path | None
    export: ExportOptions
    atol: float
    rtol: float
    validate: bool = True
    force: bool = False


def detect_framework(source: str) -> str:
    from infertool.exporters.keras import is_keras_source
    from infertool.exporters.torch import is_torch_source

    if source.endswith(".onnx"):
        raise InfertoolError(f"{source} is already ONNX", hint="use it directly with bench, run or quantize")
    if is_keras_source(source):
        return "keras"
    if is_torch_source(source):
        return "pytorch"
    path = Path(source)
    if not os.path.lexists(path):
        raise InfertoolError(
            f"source model {source} not found",
            hint="give a file (.pt .ts .pt2 .keras .h5), a SavedModel directory, or a factory file.py:function",
        )
    raise InfertoolError(
        f"unknown model format '{path.suffix or path.name}'",
        hint="supported: .pt/.pth/.ts (TorchScript or torch.save), .pt2, .keras, .h5, SavedModel directories, file.py:function",
    )


def default_output(source: str) -> Path:
    if ":" in source and not os.path.lexists(source):
        return Path(source.rpartition(":")[2] + ".onnx")
    return Path(Path(source.rstrip("/")).stem + ".onnx")


def convert(source: str, options: ConvertOptions, reporter: Reporter) -> ConvertResult:
    from infertool.exporters.validate import check_model, validate_export

    started = time.perf_counter()
    framework = detect_framework(source)
    output = options.output or default_output(source)
    if output.suffix != ".onnx":
        raise InfertoolError(f"output {output} should end in .onnx", hint="e.g. -o model.onnx")
    if framework == "keras":
        from infertool.exporters.keras import export_keras as export
    else:
        from infertool.exporters.torch import export_torch as export
    with staged_output(output, options.force) as staging:
        raw_dir = staging / "raw"
        raw_dir.mkdir()
        exported = export(source, options.export, raw_dir / "model.onnx", reporter)
        model = onnx_io.load(raw_dir / "model.onnx")
        explicit = explicit_sizes(model)
        final = staging / output.name
        external = onnx_io.save(model, final)
        del model
        shutil.rmtree(raw_dir)
        report = None
        if options.validate:
            report = validate_export(
                final, exported.reference, exported.framework, exported.example_shapes, options.atol, options.rtol,
                options.export.seed, options.export.int_range, reporter,
            )
            for warning in report.warnings:
                reporter.note(warning)
        else:
            check_model(final, full=False)  # even unvalidated, never a file ONNX does not define
        written = onnx_io.load(final, load_external_data=False)
        result = ConvertResult(
            source=source, framework=framework, exporter=exported.exporter,
            output=ModelFile(str(output), file_sha256(final), final.stat().st_size, external),
            opset=onnx_io.opset(written),
            inputs=tuple(onnx_io.input_specs(written)), outputs=tuple(onnx_io.output_specs(written)),
            seconds=time.perf_counter() - started, validation=report, env=environment.fingerprint(),
            notes=(*exported.notes, *explicit_note(explicit), *data_dependent(onnx_io.input_specs(written), onnx_io.output_specs(written))),
        )
        if report is not None and not report.passed:
            raise _parity_failure(report, exported.exporter, options, output, replace(result, output=replace(result.output, path="")))
    return result


def data_dependent(inputs: list, outputs: list) -> list[str]:
    """A note naming the output axes no input dimension names (onnx_io.data_dependent_axes)."""
    found = [f"{name} (axis {axis})" for name, axis in onnx_io.data_dependent_axes(inputs, outputs)]
    if not found:
        return []
    return [f"output sizes no input dimension names: {', '.join(found)}: the data decides them (a detector's boxes) or the "
            "exporter did not name how the inputs' sizes do; a runtime sizes them on every run (TensorRT: data-dependent shapes)"]


def _parity_failure(report, exporter: str, options: ConvertOptions, output: Path, result: ConvertResult) -> CheckFailed:
    """The worst disagreement. Where the example shapes agree and only another size of a dynamic
    axis does not, the export turned that size into a constant; otherwise the way out is the
    tolerance, or another exporter than the one that ran."""
    example_failed = any(not a.passed for b in report.batches if b.varied is None for a in b.outputs)
    candidates = [(b, a) for b in report.batches for a in b.outputs if not a.passed and (b.varied is None or not example_failed)]
    where, worst = max(candidates, key=lambda found: found[1].max_abs)
    at, hint = "", "loosen --atol/--rtol if the difference is expected" + OTHER_EXPORTER.get((exporter, options.export.exporter), "")
    if where.varied is not None:
        label, example, size = where.varied
        at = f" at {label} {size} (the example has {example})"
        hint = (f"the export baked {label} {example} in: keep sizes as tensors in the model's code (not float(x.shape[1]) or int(...)), "
                f"or drop the dynamic {label} axis")
    return CheckFailed(
        f"the ONNX model disagrees with the {result.framework} model{at}: output '{worst.name}' max abs error "
        f"{worst.max_abs:.3g} exceeds atol {options.atol:g} / rtol {options.rtol:g}; {output} was not written",
        hint=hint, result=result,
    )


# (exporter that ran, --exporter asked) -> the other exporter to try; none after dynamo fell back to TorchScript
OTHER_EXPORTER = {
    ("dynamo", "auto"): ", or try --exporter torchscript", ("dynamo", "dynamo"): ", or try --exporter torchscript",
    ("torchscript", "torchscript"): ", or try --exporter dynamo", ("tf2onnx", "auto"): ", or try another --opset",
}
