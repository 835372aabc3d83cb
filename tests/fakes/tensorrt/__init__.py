"""FAKE tensorrt: the subset of the TensorRT Python API infertool uses, for tests on CPU-only CI.

Nothing measured with it is a TensorRT result. The version it pretends to be comes from
FAKE_TENSORRT_VERSION (default 10.16.1.11); on 11.x the weak-typing BuilderFlag members are absent,
as in the real 11.x bindings. Its engine is JSON around the ONNX model, run by ONNX Runtime on the
CPU, reading and writing the fake cuda runtime's host-memory "device" buffers.
FAKE_TENSORRT_DECLINE=fp16 makes it pick fp32 kernels although fp16 was asked for (as TensorRT may).

Loaded as `tensorrt_rtx` (tests/fakes/tensorrt_rtx) it is a FAKE TensorRT-RTX 1.7.1.116
(FAKE_TENSORRT_RTX_VERSION): TensorRT 11's API, plus compute-capability targets (set in the order
the real builder needs), a runtime configuration with a runtime cache and CUDA-graph strategy, and
engines that start with TensorRT-RTX's `vtrt` tag.
Debug tensors: tensors marked with mark_debug reach the IDebugListener under their own names; with
mark_unfused_tensors_as_debug_tensors, every layer's first output does, under the layer's internal
output name (`<layer>_out`, as the inspector lists it), as real TensorRT names unfused tensors.
"""

import base64
import ctypes
import enum
import json
import os
import time

import numpy as np

RTX = __name__ == "tensorrt_rtx"
__version__ = os.environ.get("FAKE_TENSORRT_RTX_VERSION", "1.7.1.116") if RTX else os.environ.get("FAKE_TENSORRT_VERSION", "10.16.1.11")
MAJOR = 11 if RTX else int(__version__.split(".")[0])  # TensorRT-RTX has TensorRT 11's API
MAGIC = b"vtrt" if RTX else b""
ACCESSED: set[str] = set()  # "Class.member" names the code touched, checked against the real bindings


class _Api:
    def __getattribute__(self, name):
        if not name.startswith("_"):
            ACCESSED.add(f"{type(self).__name__}.{name}")
        return object.__getattribute__(self, name)


class ILogger:
    class Severity(enum.IntEnum):
        INTERNAL_ERROR = 0
        ERROR = 1
        WARNING = 2
        INFO = 3
        VERBOSE = 4

    def __init__(self):
        pass


class IProgressMonitor:
    def __init__(self):
        pass


class IDebugListener:
    def __init__(self):
        pass


class TensorLocation(enum.IntEnum):
    DEVICE = 0
    HOST = 1


class IProfiler:
    """Called per layer after each execution while set as a context's `profiler` (the fake splits the run's time evenly)."""

    def __init__(self):
        pass

    def report_layer_time(self, layer_name, ms):
        raise NotImplementedError


class NetworkDefinitionCreationFlag(enum.IntEnum):
    STRONGLY_TYPED = 1


_FLAGS = ["TF32", "VERSION_COMPATIBLE"] + (["FP16", "BF16", "INT8", "FP8"] if MAJOR < 11 else [])
BuilderFlag = enum.IntEnum("BuilderFlag", _FLAGS)
MemoryPoolType = enum.IntEnum("MemoryPoolType", ["WORKSPACE"])
ProfilingVerbosity = enum.IntEnum("ProfilingVerbosity", ["LAYER_NAMES_ONLY", "DETAILED"])
HardwareCompatibilityLevel = enum.IntEnum("HardwareCompatibilityLevel", ["NONE", "AMPERE_PLUS", "SAME_COMPUTE_CAPABILITY"])
LayerInformationFormat = enum.IntEnum("LayerInformationFormat", ["ONELINE", "JSON"])
TensorIOMode = enum.IntEnum("TensorIOMode", ["NONE", "INPUT", "OUTPUT"])
DataType = enum.IntEnum("DataType", ["FLOAT", "HALF", "BF16", "INT8", "INT32", "INT64", "BOOL", "UINT8", "FP8"])
if RTX:
    ComputeCapability = enum.IntEnum("ComputeCapability", ["NONE", "CURRENT", "SM75", "SM80", "SM86", "SM89", "SM120", "SM121"])
    CudaGraphStrategy = enum.IntEnum("CudaGraphStrategy", ["DISABLED", "WHOLE_GRAPH_CAPTURE"])
    DynamicShapesKernelSpecializationStrategy = enum.IntEnum("DynamicShapesKernelSpecializationStrategy", ["LAZY", "EAGER", "NONE"])

_ONNX_TYPES = {1: "FLOAT", 10: "HALF", 16: "BF16", 3: "INT8", 6: "INT32", 7: "INT64", 9: "BOOL", 2: "UINT8"}
_NUMPY = {"FLOAT": np.float32, "HALF": np.float16, "INT8": np.int8, "INT32": np.int32, "INT64": np.int64, "BOOL": np.bool_, "UINT8": np.uint8}
_FORMATS = {  # how the inspector describes a layer's tensors, 10.x "Format/Datatype" and 11.x "DataType"
    "fp32": ("Row major linear FP32 format (kLINEAR)", "Float"), "fp16": ("Row major linear FP16 format (kLINEAR)", "Half"),
    "bf16": ("Row major linear BF16 format (kLINEAR)", "BFloat16"), "int8": ("Row major Int8 format (kLINEAR)", "Int8"),
    "fp8": ("Row major linear FP8 format (kLINEAR)", "FP8"),
}


class ParserError(_Api):
    def __init__(self, node, name, operator, text):
        self._values = (node, name, operator, text)

    def node(self):
        return self._values[0]

    def node_name(self):
        return self._values[1]

    def node_operator(self):
        return self._values[2]

    def desc(self):
        return self._values[3]


class ITensor(_Api):
    def __init__(self, name, dtype="FLOAT", shape=()):
        self.name, self.dtype, self.shape = name, DataType[dtype], list(shape)


class ILayer(_Api):
    def __init__(self, node):
        self.name = node.name
        self._outputs = [ITensor(o) for o in node.output if o]

    @property
    def num_outputs(self):
        return len(self._outputs)

    def get_output(self, index):
        return self._outputs[index]


class INetworkDefinition(_Api):
    def __init__(self, flags):
        self.flags = flags
        self._model = None
        self._debug = set()
        self._unfused = False

    def _tensors(self, mode):
        return [ITensor(t["name"], t["dtype"], t["shape"]) for t in _io(self._model) if t["mode"] == mode]

    @property
    def num_inputs(self):
        return len(self._tensors("INPUT"))

    def get_input(self, index):
        return self._tensors("INPUT")[index]

    @property
    def num_outputs(self):
        return len(self._tensors("OUTPUT"))

    def get_output(self, index):
        return self._tensors("OUTPUT")[index]

    @property
    def num_layers(self):
        return len(self._model.graph.node)

    def get_layer(self, index):
        return ILayer(self._model.graph.node[index])

    def mark_debug(self, tensor):
        self._debug.add(tensor.name)
        return True

    def is_debug_tensor(self, tensor):
        return tensor.name in self._debug

    def mark_unfused_tensors_as_debug_tensors(self):
        self._unfused = True
        return True


class IOptimizationProfile(_Api):
    def __init__(self):
        self._shapes = {}

    def set_shape(self, input, min, opt, max):  # noqa: A002 (TensorRT's keyword names)
        self._shapes[input] = (list(min), list(opt), list(max))

    def _valid(self):
        return all(len(lo) == len(opt) == len(hi) and all(a <= b <= c for a, b, c in zip(lo, opt, hi)) for lo, opt, hi in self._shapes.values())


class ITimingCache(_Api):
    def __init__(self, data):
        self._data = bytes(data) or b"fake timing cache"

    def serialize(self):
        return memoryview(self._data)


class IBuilderConfig(_Api):
    def __init__(self):
        self.flags = set()
        self._profiles = []
        self.profiling_verbosity = ProfilingVerbosity.LAYER_NAMES_ONLY
        self.builder_optimization_level = 3
        self.hardware_compatibility_level = HardwareCompatibilityLevel.NONE
        self.progress_monitor = None
        self._cache = None
        self._logger = None
        if RTX:
            self.num_compute_capabilities = 0
            self._targets = {}

    if RTX:
        def set_compute_capability(self, compute_capability, index):
            """False past num_compute_capabilities, as the real builder (set the count first)."""
            if not 0 <= index < self.num_compute_capabilities:
                return False
            self._targets[index] = ComputeCapability(compute_capability).name
            return True

    def set_memory_pool_limit(self, pool, pool_size):
        self.workspace = pool_size

    def set_flag(self, flag):
        self.flags.add(BuilderFlag(flag).name)

    def add_optimization_profile(self, profile):
        if not profile._valid():
            names = ", ".join(profile._shapes)
            self._logger.log(ILogger.Severity.ERROR, f"IOptimizationProfile::isValid: Error Code 4: API Usage Error (Invalid optimization profiles for input tensors {names}, please ensure that the optimization profiles satisfy MIN<=OPT<=MAX. In isValid at /_src/optimizer/api/optimizationProfile.cpp:367)")
            return -1
        self._profiles.append(profile._shapes)
        return len(self._profiles) - 1

    def create_timing_cache(self, serialized_timing_cache):
        return ITimingCache(serialized_timing_cache)

    def set_timing_cache(self, cache, ignore_mismatch):
        self._cache = cache
        return True

    def get_timing_cache(self):
        return self._cache


class OnnxParser(_Api):
    _UNSUPPORTED = {"FakeUnsupportedOp"}

    def __init__(self, network, logger):
        self._network = network
        self._errors = []

    def parse_from_file(self, model):
        import onnx

        graph_model = onnx.load(model)
        for index, node in enumerate(graph_model.graph.node):
            if node.op_type in self._UNSUPPORTED:
                self._errors.append(ParserError(index, node.name, node.op_type, f"No importer registered for op: {node.op_type}"))
        self._network._model = graph_model
        return not self._errors

    @property
    def num_errors(self):
        return len(self._errors)

    def get_error(self, index):
        return self._errors[index]


def _io(model):
    initializers = {t.name for t in model.graph.initializer}

    def spec(value, mode):
        tensor = value.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
        return {"name": value.name, "mode": mode, "dtype": _ONNX_TYPES[tensor.elem_type], "shape": shape}

    return [spec(v, "INPUT") for v in model.graph.input if v.name not in initializers] + [spec(v, "OUTPUT") for v in model.graph.output]


def _layer_precision(model, flags, strongly_typed):
    ops = {n.op_type for n in model.graph.node}
    kinds = {t.data_type for t in model.graph.initializer}
    if "QuantizeLinear" in ops:
        chosen = "fp8" if 17 in {t.data_type for t in model.graph.initializer if "zero_point" in t.name} else "int8"
    elif 10 in kinds and strongly_typed:
        chosen = "fp16"
    elif 16 in kinds and strongly_typed:
        chosen = "bf16"
    else:
        chosen = next((p for p in ("fp16", "bf16") if p.upper() in flags), "fp32")
    return "fp32" if chosen == os.environ.get("FAKE_TENSORRT_DECLINE") else chosen


class Builder(_Api):
    def __init__(self, logger):
        self._logger = logger

    def create_network(self, flags=0):
        return INetworkDefinition(flags)

    def create_builder_config(self):
        config = IBuilderConfig()
        config._logger = self._logger
        return config

    def create_optimization_profile(self):
        return IOptimizationProfile()

    def build_serialized_network(self, network, config):
        io = _io(network._model)
        dynamic = [t["name"] for t in io if t["mode"] == "INPUT" and -1 in t["shape"]]
        if dynamic and not any(all(n in p for n in dynamic) for p in config._profiles):
            self._logger.log(ILogger.Severity.ERROR, "Network has dynamic or shape inputs, but no optimization profile has been defined.")
            return None
        strongly_typed = MAJOR >= 11 or bool(network.flags & (1 << int(NetworkDefinitionCreationFlag.STRONGLY_TYPED)))
        if config.progress_monitor is not None:
            config.progress_monitor.phase_start("Building engine", None, 2)
            for step in range(2):
                config.progress_monitor.step_complete("Building engine", step)
            config.progress_monitor.phase_finish("Building engine")
        engine = {
            "fake_tensorrt": __version__, "onnx": base64.b64encode(network._model.SerializeToString()).decode(), "io": io,
            "profiles": config._profiles, "precision": _layer_precision(network._model, config.flags, strongly_typed),
            "layers": [[n.name, n.op_type] for n in network._model.graph.node],
            "debug": sorted(network._debug), "unfused": network._unfused,
        }
        if RTX:
            engine["targets"] = [config._targets[i] for i in range(config.num_compute_capabilities)]
        kind = _FORMATS[engine["precision"]][1]
        self._logger.log(ILogger.Severity.VERBOSE, "Layers:\n" + "\n".join(
            f"Name: {name}, LayerType: {op}, Inputs: [ {{ Name: {name}_in, Dimensions: [-1], Datatype: {kind}, Format: (Linear) }}], "
            f"Constants: [], Outputs: [ {{ Name: {name}_out, Datatype: {kind} }}], TacticName: fake, StreamId: 0, Metadata: [ONNX Layer: {name}]"
            for name, op in engine["layers"]
        ) + "\n\nI/O Tensors:\n")
        return IHostMemory(MAGIC + json.dumps(engine).encode())


class IHostMemory(bytes):
    """Serialized engine bytes (the real one exposes the buffer protocol)."""


def _gpu_capability():
    from cuda.bindings import runtime

    props = runtime.cudaGetDeviceProperties(0)[1]
    return f"{props.major}.{props.minor}"


def _runs_here(targets):
    """TensorRT-RTX's runtime: not on 9.0 / 10.x; explicit targets must include this GPU's."""
    major, minor = map(int, _gpu_capability().split("."))
    supported = (major, minor) in {(7, 5), (8, 0), (8, 6), (8, 9)} or major >= 12
    return supported and (not targets or f"SM{major}{minor}" in targets)


class Runtime(_Api):
    def __init__(self, logger):
        self._logger = logger
        self.engine_host_code_allowed = False

    def deserialize_cuda_engine(self, serialized_engine):
        blob = bytes(serialized_engine)
        try:
            if not blob.startswith(MAGIC):
                raise ValueError("no TensorRT-RTX tag")
            data = json.loads(blob[len(MAGIC):])
        except ValueError:
            self._logger.log(ILogger.Severity.ERROR, "Serialization assertion failed: magic tag mismatch")
            return None
        if RTX and not _runs_here(data["targets"]):
            self._logger.log(ILogger.Severity.ERROR, f"The engine cannot run on this GPU, which has compute capability {_gpu_capability()}. Supported compute capabilities: 8.0 8.6 8.9 12.0 12.1 >12.0")
            return None
        if data.get("fake_tensorrt") != __version__:
            self._logger.log(ILogger.Severity.ERROR, f"The engine plan file is not compatible with this version of TensorRT ({__version__})")
            return None
        return ICudaEngine(data)


class EngineInspector(_Api):
    def __init__(self, data):
        self._data = data

    def get_engine_information(self, format):  # noqa: A002
        key = "DataType" if MAJOR >= 11 else "Format/Datatype"
        kind = _FORMATS[self._data["precision"]][1 if MAJOR >= 11 else 0]
        layers = [{"Name": name, "LayerType": op, "Inputs": [{"Name": f"{name}_in", key: kind}], "Outputs": [{"Name": f"{name}_out", key: kind}],
                   "Metadata": f"[ONNX Layer: {name}]"} for name, op in self._data["layers"]]
        io = "I/O Tensors" if MAJOR >= 11 else "Bindings"
        return json.dumps({"Layers": layers, io: [t["name"] for t in self._data["io"]]})


class ICudaEngine(_Api):
    def __init__(self, data):
        self._data = data
        self._io = {t["name"]: t for t in data["io"]}
        self.num_io_tensors = len(data["io"])
        self.device_memory_size_v2 = 1 << 20

    def get_tensor_name(self, index):
        return self._data["io"][index]["name"]

    def get_tensor_mode(self, name):
        return TensorIOMode[self._io[name]["mode"]]

    def get_tensor_dtype(self, name):
        return DataType[self._io[name]["dtype"]]

    def get_tensor_shape(self, name):
        return list(self._io[name]["shape"])

    def get_tensor_profile_shape(self, name, profile_index):
        return self._data["profiles"][profile_index][name]

    def create_execution_context(self, runtime_config=None):
        return IExecutionContext(self)

    if RTX:
        def create_runtime_config(self):
            return IRuntimeConfig()

    def create_engine_inspector(self):
        return EngineInspector(self._data)

    def is_debug_tensor(self, name):
        return name in self._data.get("debug", [])


class IExecutionContext(_Api):
    def __init__(self, engine):
        self._engine = engine
        self._shapes = {}
        self._addresses = {}
        self._session = None
        self._listener = None
        self._debug_on = False
        self.unfused_tensors_debug_state = False
        self.profiler = None

    def set_debug_listener(self, listener):
        self._listener = listener
        return True

    def set_all_tensors_debug_state(self, flag):
        self._debug_on = bool(flag)
        return True

    def _debug_tensors(self):
        """ONNX tensor -> the name the listener hears it under."""
        data = self._engine._data
        found = {n: n for n in data.get("debug", [])} if self._debug_on else {}
        if data.get("unfused") and self.unfused_tensors_debug_state:
            model = _onnx_model(data)
            found.update({n.output[0]: f"{n.name}_out" for n in model.graph.node if n.output and n.output[0]})
        return found

    def set_input_shape(self, name, shape):
        profile = self._engine._data["profiles"][0].get(name) if self._engine._data["profiles"] else None
        fixed = self._engine._io[name]["shape"]
        if profile is not None:
            lo, _, hi = profile
            if len(shape) != len(lo) or not all(a <= s <= b for a, s, b in zip(lo, shape, hi)):
                return False
        elif list(shape) != fixed:
            return False
        self._shapes[name] = tuple(shape)
        return True

    def get_tensor_shape(self, name):
        if name in self._shapes:
            return list(self._shapes[name])
        return list(self._outputs_for_shapes()[name].shape)

    def set_tensor_address(self, name, memory):
        self._addresses[name] = memory
        return True

    def _run(self, feeds):
        if self._session is None:
            import onnxruntime

            model = _onnx_model(self._engine._data)
            _add_outputs(model, self._debug_tensors())
            self._session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        return dict(zip([o.name for o in self._session.get_outputs()], self._session.run(None, feeds)))

    def _report_debug(self, values, stream):
        from cuda.bindings import runtime

        for tensor, heard_as in self._debug_tensors().items():
            value = np.ascontiguousarray(values[tensor])
            _, pointer = runtime.cudaMalloc(max(value.nbytes, 1))
            ctypes.memmove(pointer, value.ctypes.data, value.nbytes)
            kind = {np.dtype(v): k for k, v in _NUMPY.items()}[value.dtype]
            self._listener.process_debug_tensor(pointer, TensorLocation.DEVICE, DataType[kind], list(value.shape), heard_as, stream)
            runtime.cudaFree(pointer)

    def _outputs_for_shapes(self):
        feeds = {n: np.zeros(s, _NUMPY[self._engine._io[n]["dtype"]]) for n, s in self._shapes.items()}
        return self._run(feeds)

    def execute_async_v3(self, stream_handle):
        from cuda.bindings import runtime

        def work():
            started = time.perf_counter()
            feeds = {}
            for name, shape in self._shapes.items():
                dtype = np.dtype(_NUMPY[self._engine._io[name]["dtype"]])
                raw = ctypes.string_at(self._addresses[name], int(np.prod(shape)) * dtype.itemsize)
                feeds[name] = np.frombuffer(raw, dtype).reshape(shape)
            values = self._run(feeds)
            for name in (n for n in values if n in self._engine._io):
                value = np.ascontiguousarray(values[name])
                ctypes.memmove(self._addresses[name], value.ctypes.data, value.nbytes)
            if self._listener is not None:
                self._report_debug(values, stream_handle)
            if self.profiler is not None:
                layers = self._engine._data["layers"]
                for name, _ in layers:
                    self.profiler.report_layer_time(name, (time.perf_counter() - started) * 1e3 / len(layers))

        runtime.enqueue(runtime.streams.get(stream_handle), work)
        return True


class IRuntimeCache(_Api):
    """Kernels compiled just in time; valid only for this (fake) TensorRT-RTX version."""

    def __init__(self):
        self._data = b""

    def serialize(self):
        return memoryview(f"fake runtime cache {__version__}".encode())

    def deserialize(self, blob):
        if bytes(blob) != f"fake runtime cache {__version__}".encode():
            return False
        self._data = bytes(blob)
        return True


class IRuntimeConfig(_Api):
    def __init__(self):
        self.cuda_graph_strategy = CudaGraphStrategy.DISABLED
        self.dynamic_shapes_kernel_specialization_strategy = DynamicShapesKernelSpecializationStrategy.LAZY
        self._cache = None

    def create_runtime_cache(self):
        return IRuntimeCache()

    def set_runtime_cache(self, cache):
        self._cache = cache
        return True


if not RTX:
    del IRuntimeCache, IRuntimeConfig
def _onnx_model(data):
    import onnx

    return onnx.load_from_string(base64.b64decode(data["onnx"]))


def _add_outputs(model, names):
    """The engine's ONNX with the debug tensors as outputs too, typed by shape inference."""
    import onnx

    if not names:
        return
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in [*inferred.graph.value_info, *inferred.graph.output]}
    present = {o.name for o in model.graph.output}
    for name in names:
        if name not in present:
            model.graph.output.append(onnx.helper.make_tensor_value_info(name, types[name], None))
