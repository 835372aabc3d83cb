"""ONNX -> serialized TensorRT engine + sidecar, for TensorRT 10.x, 11.x and TensorRT-RTX 1.x.

parse -> precision plan (builder flags on 10.x, a graph written by the precision stage on 11.x and
TensorRT-RTX) -> config (profiles, workspace, timing cache, TensorRT-RTX's compute-capability
targets) -> build -> inspect -> save. TensorRT-RTX builds ahead of time, without a GPU: its engine
is read back from the builder's log and the network instead of being loaded.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from infertool import cuda, onnx_io
from infertool.engine import debug_tensors as debug
from infertool.engine import plan as precision_plan
from infertool.engine import rtx, tensorrt_api
from infertool.engine import sidecar as sidecars
from infertool.engine.profiles import ShapeProfile
from infertool.engine.tensorrt_api import TENSORRT, Flavour
from infertool.errors import CheckFailed, InfertoolError
from infertool.files import file_sha256, staged_output, write_bytes_atomic
from infertool.inputs.batches import split_batches
from infertool.inputs.feeds import FeedSource, InputOptions
from infertool.onnx_io import ModelInfo
from infertool.precision import transform
from infertool.precision.settings import PrecisionSettings
from infertool.records.build import BuildResult
from infertool.records.model_file import ModelFile
from infertool.reporting import Reporter
from infertool.text import shorten

HARDWARE_COMPAT = {"none": "NONE", "ampere+": "AMPERE_PLUS", "same-compute-capability": "SAME_COMPUTE_CAPABILITY"}
CALIBRATION_BATCH = 8
RANDOM_CALIBRATION_SAMPLES = 32

# Called with (original ONNX, precision-stage ONNX, its precision, calibration samples) while the
# stage's ONNX exists; returns more for the stage's report. build-engine hands in its accuracy check.
StageReview = Callable[[Path, Path, str, "dict | None"], dict]


@dataclass(frozen=True)
class BuildOptions:
    precision: str | None = None  # None: the graph's own (build-engine resolves it before the build)
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
    flavour: Flavour = TENSORRT  # set by the backend that builds
    compute_capabilities: tuple[str, ...] = ()  # TensorRT-RTX targets; none: its defaults
    debug_tensors: tuple[str, ...] = ()  # tensors to read back at run time (debug layers)
    keep_fusions: bool = True  # debug tensors: mark unfused tensors where TensorRT can, rather than each one

    def to_dict(self) -> dict:
        return {
            "flavour": self.flavour.name, "compute_capabilities": list(self.compute_capabilities) or None, "precision": self.precision, "profiles": [p.to_dict() for p in self.profiles], "workspace_bytes": self.workspace,
            "builder_optimization_level": self.opt_level, "timing_cache": str(self.timing_cache) if self.timing_cache else None,
            "version_compatible": self.version_compatible, "hardware_compat": self.hardware_compat,
            "calibration_method": self.calib_method if self.calib else None, "device": self.device,
            "debug_tensors": list(self.debug_tensors), "keep_fusions": self.keep_fusions,
        }


@dataclass
class _Built:
    engine: bytes
    seconds: float
    cache_loaded: bool
    precisions: Any
    io: dict
    device_memory: int | None  # None: not loaded here (an ahead-of-time build)
    layers: list  # engine layers with the ONNX nodes they came from
    marked: debug.Marked | None  # the debug tensors marked


def calibration_samples(model: ModelInfo, options: BuildOptions) -> dict | None:
    """Stacked calibration samples for the precision stage, or None without --calib-data."""
    if options.calib is None:
        return None
    source = FeedSource(list(model.inputs), options.calib)
    if options.calib.path is None:
        return source.feeds(options.calib_samples or RANDOM_CALIBRATION_SAMPLES)
    feeds = source.feeds(None)
    return {n: a[: options.calib_samples] if a.ndim else a for n, a in feeds.items()} if options.calib_samples else feeds


def _precision_stage(
    model: ModelInfo, target: str, options: BuildOptions, staging: Path, reporter: Reporter, review: StageReview | None,
) -> tuple[Path, dict]:
    """Casts or Q/DQ written into the graph (TensorRT 11 reads precision from the graph alone)."""
    output = staging / f"{model.path.stem}.{target}.onnx"
    samples = calibration_samples(model, options)
    batches = None if samples is None else split_batches(samples, list(model.inputs), CALIBRATION_BATCH)
    settings = PrecisionSettings(precision=target, calib_method=options.calib_method)
    transform.check_request(model.precision, settings, samples is not None)
    proto = onnx_io.load(model.path)
    result = transform.convert(model.path, proto, output, settings, batches, reporter)
    del proto
    report = {"precision": target, "graph": result.graph, "calibration": result.calibration, "notes": list(result.notes)}
    if review is not None:
        report.update(review(model.path, output, target, samples))
    return output, report


UNSUPPORTED_HINT = ("run the ops it lacks outside the engine (on the host, or in ONNX Runtime: cut the graph before them) "
                    "or give it a plugin; else simplify or re-export the model")


def _parse(trt: Any, flavour: Flavour, onnx_path: Path, network: Any, logger: Any) -> None:
    parser = trt.OnnxParser(network, logger)
    if parser.parse_from_file(str(onnx_path)):
        return
    errors = []
    for index in range(parser.num_errors):
        error = parser.get_error(index)
        where = error.node_name() or f"node {error.node()}"
        errors.append(f"{where} ({error.node_operator()}): {' '.join(error.desc().split())}")
    raise InfertoolError(f"{flavour.name}'s ONNX parser rejected {onnx_path.name}: " + "; ".join(errors or logger.errors()[-3:]), hint=UNSUPPORTED_HINT)


def _add_profiles(flavour: Flavour, builder: Any, network: Any, config: Any, profiles: tuple[ShapeProfile, ...], logger: Any) -> None:
    inputs = [network.get_input(i).name for i in range(network.num_inputs)]
    for index, profile in enumerate(profiles):
        unknown = sorted(set(profile.shapes) - set(inputs))
        if unknown:
            raise InfertoolError(
                f"profile {index} names {', '.join(map(repr, unknown))}, which the parsed network has no input of (inputs: {', '.join(inputs)})",
                hint="name the model's inputs in --min-shapes/--opt-shapes/--max-shapes",
            )
        if not profile.shapes:
            continue
        optimization_profile = builder.create_optimization_profile()
        for name, (lo, opt, hi) in profile.shapes.items():
            optimization_profile.set_shape(name, lo, opt, hi)
        if config.add_optimization_profile(optimization_profile) < 0:
            raise InfertoolError(
                f"{flavour.name} refused optimization profile {index}: {' | '.join(logger.errors())}",
                hint="every dimension needs min <= opt <= max, and the model's fixed dimensions as they are",
            )


def _configure(trt: Any, builder: Any, network: Any, options: BuildOptions, plan: precision_plan.PrecisionPlan, logger: Any) -> tuple[Any, bool]:
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
    rtx.set_targets(trt, config, options.compute_capabilities)
    _add_profiles(options.flavour, builder, network, config, options.profiles, logger)
    cache_loaded = False
    if options.timing_cache is not None and not options.flavour.ahead_of_time:
        cached = options.timing_cache.read_bytes() if options.timing_cache.is_file() else b""
        cache_loaded = bool(cached)
        config.set_timing_cache(config.create_timing_cache(cached), False)
    return config, cache_loaded


def _build(trt: Any, source: Path, options: BuildOptions, plan: precision_plan.PrecisionPlan, reporter: Reporter) -> _Built:
    """Parse, configure, build, and read the engine back: through the inspector where it can be
    loaded here, else (TensorRT-RTX, built ahead of time) from the builder's log and the network."""
    flavour = options.flavour
    logger = tensorrt_api.make_logger(flavour, options.verbose, reporter.note)
    builder = trt.Builder(logger)
    flags = 0
    if plan.strongly_typed and flavour.api() < 11:  # 11.x and TensorRT-RTX are always strongly typed
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    with reporter.task(f"parsing {source.name}"):
        _parse(trt, flavour, source, network, logger)
    marked = debug.mark(network, options.debug_tensors, options.keep_fusions) if options.debug_tensors else None
    config, cache_loaded = _configure(trt, builder, network, options, plan, logger)
    with reporter.task(f"building the {flavour.name} engine") as task:
        monitor = tensorrt_api.progress_monitor(flavour, lambda phase, step, steps: task.describe(f"building: {phase} {step}/{steps}"))
        if monitor is not None:
            config.progress_monitor = monitor
        started = time.perf_counter()
        serialized = builder.build_serialized_network(network, config)
        seconds = time.perf_counter() - started
    if serialized is None:
        raise _build_failure(flavour, source, logger)
    engine_bytes = bytes(serialized)
    if options.timing_cache is not None and not flavour.ahead_of_time:
        write_bytes_atomic(options.timing_cache, bytes(config.get_timing_cache().serialize()), force=True)
    if flavour.ahead_of_time:
        info = precision_plan.layers_from_log(logger.messages)
        return _Built(engine_bytes, seconds, cache_loaded, precision_plan.layer_precisions(info), _network_io(network), None, debug.layers(info), marked)
    with reporter.task("inspecting the engine"):
        engine = trt.Runtime(logger).deserialize_cuda_engine(engine_bytes)
        if engine is None:
            raise InfertoolError(f"{flavour.name} could not load the engine it built", hint="rerun with --verbose for its log",
                                 detail=" | ".join(logger.errors()[-3:] or logger.messages[-3:]))
        info = json.loads(engine.create_engine_inspector().get_engine_information(trt.LayerInformationFormat.JSON))
        return _Built(
            engine_bytes, seconds, cache_loaded, precision_plan.layer_precisions(info), _io_specs(trt, engine), int(engine.device_memory_size_v2),
            debug.layers(info), marked,
        )


def _build_failure(flavour: Flavour, source: Path, logger: Any) -> InfertoolError:
    """The builder's error, naming the ONNX node and op of the layer it failed on."""
    errors = logger.errors()
    for message in errors:
        found = re.search(r"(\S+) has no runners that implement it", message)
        if found:
            return InfertoolError(f"{flavour.name} has no kernel for {_onnx_node(source, found.group(1))}: layer {found.group(1)} has no runners that implement it",
                                  hint=UNSUPPORTED_HINT)
    for message in errors:
        found = re.search(r"\b\w*Layer (\S+?): (.*)", message)
        if found:
            return InfertoolError(f"{flavour.name} could not build {_onnx_node(source, found.group(1))}: {shorten(found.group(2), 200)}", hint=UNSUPPORTED_HINT)
    return InfertoolError(f"{flavour.name} could not build the engine: " + " | ".join(errors[-3:] or logger.messages[-3:]), hint="rerun with --verbose for the builder's log")


def _onnx_node(source: Path, layer: str) -> str:
    """The ONNX node a layer came from: the node of that name, or the longest whose name it extends;
    for an unnamed node (TensorRT calls its layer `node_of_<output>`), the node making that output."""
    graph = onnx_io.load(source, load_external_data=False).graph
    nodes = {node.name: node.op_type for node in graph.node if node.name}
    named = max((n for n in nodes if layer == n or layer.startswith(n + "_")), key=len, default=None)
    if named:
        return f"node '{named}' ({nodes[named]})"
    made = {output: node for node in graph.node for output in node.output if output}
    output = max((o for o in made if layer == f"node_of_{o}" or layer.startswith(f"node_of_{o}_")), key=len, default=None)
    if output is not None:
        return f"node '{made[output].name}' ({made[output].op_type})" if made[output].name else f"the unnamed {made[output].op_type} node making '{output}'"
    return f"layer '{layer}' (op unknown)"


def _check_precision(plan: precision_plan.PrecisionPlan, built: _Built, output: Path, flavour: Flavour) -> None:
    if plan.expect and built.precisions is not None and not any(built.precisions.get(p) for p in plan.expect):
        found = ", ".join(f"{k} {v}" for k, v in sorted(built.precisions.items())) or "none"
        raise CheckFailed(
            f"the engine has no {'/'.join(plan.expect)} layer (layers by type: {found}); {flavour.name} chose other "
            f"kernels, so {output} was not written",
            hint="check that the GPU supports the precision, or inspect with --verbose",
        )


def _fusions(layers: list[dict], flavour: Flavour, shown: int = 3) -> list[str]:
    """What the builder fused: layers made of several ONNX nodes (their precision is judged on what
    they compute with, constants included)."""
    fused = [layer for layer in layers if len(layer["onnx_nodes"]) > 1]
    if not fused:
        return []
    described = "; ".join(f"{', '.join(layer['onnx_nodes'][:4])}{' …' if len(layer['onnx_nodes']) > 4 else ''} into {layer['name']}" for layer in fused[:shown])
    return [f"{flavour.name} fused {sum(len(layer['onnx_nodes']) for layer in fused)} ONNX nodes into {len(fused)} layer{'s' * (len(fused) > 1)}: {described}"
            + (" …" if len(fused) > shown else "")]


def _check_portability(options: BuildOptions) -> None:
    if options.flavour.ahead_of_time and (options.version_compatible or options.hardware_compat != "none"):
        raise InfertoolError(
            "--version-compatible and --hardware-compat are TensorRT options: a TensorRT-RTX engine runs on its own "
            "TensorRT-RTX version, on the compute capabilities it was built for",
            hint="drop them; choose the GPUs with --compute-capability",
        )


def build_engine(
    model: ModelInfo, output: Path, options: BuildOptions, reporter: Reporter, review: StageReview | None = None,
) -> BuildResult:
    flavour = options.flavour
    trt = flavour.load()
    started = time.perf_counter()
    options = replace(options, compute_capabilities=rtx.resolve(options.compute_capabilities, options.device))
    notes: list[str] = []
    plan = precision_plan.plan(options.precision, model.precision, flavour.api(), options.calib is not None, notes)
    rtx.check_targets(flavour, options.compute_capabilities, plan.expect)
    _check_portability(options)
    if flavour.ahead_of_time and options.timing_cache is not None:
        notes.append(f"{flavour.name} has no timing cache; --timing-cache was not used")
    gpu = None if flavour.ahead_of_time else cuda.gpu_identity(options.device)  # an ahead-of-time build needs no GPU
    with staged_output(output, options.force) as staging:
        source, stage_report = model.path, None
        if plan.transform is not None:
            source, stage_report = _precision_stage(model, plan.transform, options, staging, reporter, review)
        built_sha256 = file_sha256(source) if source != model.path else None
        built = _build(trt, source, options, plan, reporter)
        notes += _fusions(built.layers, flavour)
        _check_precision(plan, built, output, flavour)
        (staging / output.name).write_bytes(built.engine)
        for leftover in staging.glob("*.onnx*"):
            leftover.unlink()
        sidecar = {
            "schema": sidecars.SCHEMA, "flavour": flavour.name, "tensorrt_version": flavour.version(), "tensorrt_module": flavour.module_path(),
            "gpu": gpu, "compute_capabilities": list(options.compute_capabilities) or None, "precision": options.precision, "plan": plan.to_dict(),
            "layer_precisions": dict(built.precisions) if built.precisions is not None else None,
            "profiles": [p.to_dict() for p in options.profiles], "inputs": built.io["inputs"], "outputs": built.io["outputs"],
            "onnx": {"path": str(model.path), "sha256": model.sha256}, "built_onnx_sha256": built_sha256,
            "build_seconds": round(built.seconds, 3), "engine_bytes": len(built.engine), "device_memory_bytes": built.device_memory,
            "version_compatible": options.version_compatible, "hardware_compat": options.hardware_compat,
            "options": options.to_dict(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "layers": built.layers, "debug_tensors": built.marked.to_dict() if built.marked else None,
        }
        sidecars.sidecar_path(staging / output.name).write_text(json.dumps(sidecar, indent=2) + "\n")
    return BuildResult(
        engine=ModelFile(str(output), file_sha256(output), len(built.engine)), sidecar=sidecar,
        timing_cache_loaded=built.cache_loaded, precision_report=stage_report,
        seconds=time.perf_counter() - started, notes=tuple(notes),
    )


def _tensor(name: str, dtype: Any, shape: Any) -> dict:
    return {"name": name, "dtype": tensorrt_api.dtype_name(dtype), "shape": list(shape)}


def _io_specs(trt: Any, engine: Any) -> dict:
    io: dict[str, list] = {"inputs": [], "outputs": []}
    for index in range(engine.num_io_tensors):
        name = engine.get_tensor_name(index)
        kind = "inputs" if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else "outputs"
        io[kind].append(_tensor(name, engine.get_tensor_dtype(name), engine.get_tensor_shape(name)))
    return io


def _network_io(network: Any) -> dict:
    """The engine's inputs and outputs as the parsed network declares them (-1: dynamic)."""
    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    outputs = [network.get_output(i) for i in range(network.num_outputs)]
    return {"inputs": [_tensor(t.name, t.dtype, t.shape) for t in inputs], "outputs": [_tensor(t.name, t.dtype, t.shape) for t in outputs]}
