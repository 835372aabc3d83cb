"""`build-engine`: ONNX -> serialized TensorRT engine + sidecar, for TensorRT 10.x and 11.x."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infertool import onnx_model
from infertool.engine import plan as precision_plan
from infertool.engine import sidecar as sidecars
from infertool.engine import tensorrt_api
from infertool.engine.profiles import ShapeProfile
from infertool.errors import CheckFailed, InfertoolError
from infertool.files import file_sha256, staged_output, write_bytes_atomic
from infertool.inputs import InputOptions
from infertool.precision.detect import graph_precision
from infertool.reporting import Reporter
from infertool.results import BuildResult, ModelFile

HARDWARE_COMPAT = {"none": "NONE", "ampere+": "AMPERE_PLUS", "same-compute-capability": "SAME_COMPUTE_CAPABILITY"}


def parse_size(text: str) -> int:
    """`4096` (MiB, as trtexec), `512M`, `4G`, `4GiB` -> bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]i?B?)?\s*", text, re.IGNORECASE)
    if not match:
        raise InfertoolError(f"malformed size '{text}'", hint="e.g. 4096 (MiB), 512M or 4G")
    unit = (match.group(2) or "M")[0].upper()
    return int(float(match.group(1)) * {"K": 2**10, "M": 2**20, "G": 2**30}[unit])


@dataclass(frozen=True)
class BuildOptions:
    precision: str = "fp32"
    profiles: tuple[ShapeProfile, ...] = ()
    workspace: int | None = None  # bytes
    opt_level: int | None = None
    timing_cache: Path | None = None
    version_compatible: bool = False
    hardware_compat: str = "none"
    verbose: bool = False
    calib: InputOptions | None = None  # calibration data for int8 / fp8 on a graph without Q/DQ
    calib_method: str = "minmax"
    calib_samples: int | None = None
    device: int = 0
    force: bool = False

    def to_dict(self) -> dict:
        return {
            "precision": self.precision, "profiles": [p.to_dict() for p in self.profiles], "workspace_bytes": self.workspace,
            "builder_optimization_level": self.opt_level, "timing_cache": str(self.timing_cache) if self.timing_cache else None,
            "version_compatible": self.version_compatible, "hardware_compat": self.hardware_compat,
            "calibration_method": self.calib_method if self.calib else None, "device": self.device,
        }


def gpu_identity(device: int) -> dict:
    from infertool import cuda

    cuda.set_device(device)
    properties = cuda.device_properties(device)
    return {"index": device, "name": properties["name"], "compute_capability": properties["compute_capability"]}


def _apply_precision_stage(onnx_path: Path, target: str, options: BuildOptions, staging: Path, reporter: Reporter) -> tuple[Path, Any]:
    """Casts or Q/DQ written into the graph (TensorRT 11 reads precision from the graph alone)."""
    from infertool.precision.quantize import QuantizeOptions, quantize

    output = staging / f"{onnx_path.stem}.{target}.onnx"
    result = quantize(
        onnx_path,
        QuantizeOptions(precision=target, output=output, calib=options.calib, calib_method=options.calib_method,
                        calib_samples=options.calib_samples, force=True),
        reporter,
    )
    return output, result


def _parse(trt: Any, onnx_path: Path, network: Any, logger: Any) -> None:
    parser = trt.OnnxParser(network, logger)
    if parser.parse_from_file(str(onnx_path)):
        return
    errors = []
    for index in range(parser.num_errors):
        error = parser.get_error(index)
        where = error.node_name() or f"node {error.node()}"
        errors.append(f"{where} ({error.node_operator()}): {error.desc()}")
    raise InfertoolError(
        f"TensorRT's ONNX parser rejected {onnx_path.name}: " + "; ".join(errors or logger.messages[-3:]),
        hint="simplify or re-export the model (unsupported ops need a plugin)",
    )


def _configure(trt: Any, builder: Any, options: BuildOptions, plan: precision_plan.PrecisionPlan) -> tuple[Any, bool]:
    config = builder.create_builder_config()
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED  # the inspector then reports layer precisions
    if options.workspace is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace)
    if options.opt_level is not None:
        config.builder_optimization_level = options.opt_level
    for flag in plan.flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    if options.version_compatible:
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
    if options.hardware_compat != "none":
        config.hardware_compatibility_level = getattr(trt.HardwareCompatibilityLevel, HARDWARE_COMPAT[options.hardware_compat])
    for profile in options.profiles:
        if not profile.shapes:
            continue
        optimization_profile = builder.create_optimization_profile()
        for name, (lo, opt, hi) in profile.shapes.items():
            optimization_profile.set_shape(name, lo, opt, hi)
        config.add_optimization_profile(optimization_profile)
    cache_loaded = False
    if options.timing_cache is not None:
        cached = options.timing_cache.read_bytes() if options.timing_cache.is_file() else b""
        cache_loaded = bool(cached)
        config.set_timing_cache(config.create_timing_cache(cached), False)
    return config, cache_loaded


def build_engine(onnx_path: Path, output: Path, options: BuildOptions, reporter: Reporter) -> BuildResult:
    trt = tensorrt_api.tensorrt()
    started = time.perf_counter()
    model = onnx_model.load(onnx_path, load_external_data=False)
    notes: list[str] = []
    plan = precision_plan.plan(options.precision, graph_precision(model), tensorrt_api.major(), options.calib is not None, notes)
    gpu = gpu_identity(options.device)
    with staged_output(output, options.force) as staging:
        source, precision_report = onnx_path, None
        if plan.transform is not None:
            source, precision_report = _apply_precision_stage(onnx_path, plan.transform, options, staging, reporter)
        built_sha256 = file_sha256(source) if source != onnx_path else None
        logger = tensorrt_api.make_logger(options.verbose, reporter.note)
        builder = trt.Builder(logger)
        flags = 0
        if plan.strongly_typed and tensorrt_api.major() < 11:  # 11.x is always strongly typed
            flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
        network = builder.create_network(flags)
        with reporter.task(f"parsing {source.name}"):
            _parse(trt, source, network, logger)
        config, cache_loaded = _configure(trt, builder, options, plan)
        with reporter.task("building the TensorRT engine") as task:
            monitor = tensorrt_api.progress_monitor(lambda phase, step, steps: task.describe(f"building: {phase} {step}/{steps}"))
            if monitor is not None:
                config.progress_monitor = monitor
            build_started = time.perf_counter()
            serialized = builder.build_serialized_network(network, config)
            build_seconds = time.perf_counter() - build_started
        if serialized is None:
            raise InfertoolError(
                "TensorRT could not build the engine: " + " | ".join(logger.messages[-3:]),
                hint="rerun with --verbose for TensorRT's log",
            )
        engine_bytes = bytes(serialized)
        if options.timing_cache is not None:
            write_bytes_atomic(options.timing_cache, bytes(config.get_timing_cache().serialize()), force=True)
        with reporter.task("inspecting the engine"):
            runtime = trt.Runtime(logger)
            engine = runtime.deserialize_cuda_engine(engine_bytes)
            if engine is None:
                raise InfertoolError("TensorRT could not load the engine it built: " + " | ".join(logger.messages[-3:]))
            info = json.loads(engine.create_engine_inspector().get_engine_information(trt.LayerInformationFormat.JSON))
            precisions = precision_plan.layer_precisions(info)
            io = _io_specs(trt, engine)
            device_memory = int(engine.device_memory_size_v2)
        if plan.expect and precisions is not None and not any(precisions.get(p) for p in plan.expect):
            found = ", ".join(f"{k} {v}" for k, v in sorted(precisions.items())) or "none"
            raise CheckFailed(
                f"the engine has no {'/'.join(plan.expect)} layer (layers by type: {found}); TensorRT chose other "
                f"kernels, so {output} was not written",
                hint="check that the GPU supports the precision, or inspect with --verbose",
            )
        (staging / output.name).write_bytes(engine_bytes)
        for leftover in staging.glob("*.onnx*"):
            leftover.unlink()
        sidecar = {
            "schema": sidecars.SCHEMA, "tensorrt_version": tensorrt_api.version(), "tensorrt_module": tensorrt_api.module_path(), "gpu": gpu,
            "precision": options.precision, "plan": plan.to_dict(),
            "layer_precisions": dict(precisions) if precisions is not None else None,
            "profiles": [p.to_dict() for p in options.profiles], "inputs": io["inputs"], "outputs": io["outputs"],
            "onnx": {"path": str(onnx_path), "sha256": file_sha256(onnx_path)},
            "built_onnx_sha256": built_sha256,
            "build_seconds": round(build_seconds, 3), "engine_bytes": len(engine_bytes), "device_memory_bytes": device_memory,
            "version_compatible": options.version_compatible, "hardware_compat": options.hardware_compat,
            "options": options.to_dict(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        sidecars.sidecar_path(staging / output.name).write_text(json.dumps(sidecar, indent=2) + "\n")
    return BuildResult(
        engine=ModelFile(str(output), file_sha256(output), len(engine_bytes)), sidecar=sidecar,
        timing_cache_loaded=cache_loaded, precision_report=precision_report.to_dict() if precision_report else None,
        seconds=time.perf_counter() - started, notes=tuple(notes),
    )


def _io_specs(trt: Any, engine: Any) -> dict:
    io: dict[str, list] = {"inputs": [], "outputs": []}
    for index in range(engine.num_io_tensors):
        name = engine.get_tensor_name(index)
        kind = "inputs" if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else "outputs"
        io[kind].append({"name": name, "dtype": tensorrt_api.dtype_name(engine.get_tensor_dtype(name)), "shape": list(engine.get_tensor_shape(name))})
    return io


def profiles_for(onnx_path: Path, requests: list, shapes: dict, batch: int | None) -> tuple[tuple[ShapeProfile, ...], list[str]]:
    """Profiles checked against the model's inputs, with derived ones for undescribed dynamic inputs."""
    from infertool.engine.profiles import resolve_profiles
    from infertool.specs import bind_unnamed

    specs = onnx_model.input_specs(onnx_model.load(onnx_path, load_external_data=False))
    notes: list[str] = []
    named = bind_unnamed(shapes, [s.name for s in specs], "--input-shape")
    return tuple(resolve_profiles(specs, requests, named, batch, notes)), notes
