"""FAKE tensorrt: the subset of the TensorRT Python API infertool uses, for tests on CPU-only CI.

Nothing measured with it is a TensorRT result. The version it pretends to be comes from
FAKE_TENSORRT_VERSION (default 10.16.1.11); on 11.x the weak-typing BuilderFlag members are absent,
as in the real 11.x bindings. Its engine is JSON around the ONNX model, run by ONNX Runtime on the
CPU, reading and writing the fake cuda runtime's host-memory "device" buffers.
FAKE_TENSORRT_DECLINE=fp16 makes it pick fp32 kernels although fp16 was asked for (as TensorRT may).
"""

import base64
import ctypes
import enum
import json
import os
import time

import numpy as np

__version__ = os.environ.get("FAKE_TENSORRT_VERSION", "10.16.1.11")
MAJOR = int(__version__.split(".")[0])
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


class INetworkDefinition(_Api):
    def __init__(self, flags):
        self.flags = flags
        self.model = None


class IOptimizationProfile(_Api):
    def __init__(self):
        self.shapes = {}

    def set_shape(self, input, min, opt, max):  # noqa: A002 (TensorRT's keyword names)
        self.shapes[input] = (list(min), list(opt), list(max))


class ITimingCache(_Api):
    def __init__(self, data):
        self._data = bytes(data) or b"fake timing cache"

    def serialize(self):
        return memoryview(self._data)


class IBuilderConfig(_Api):
    def __init__(self):
        self.flags = set()
        self.profiles = []
        self.profiling_verbosity = ProfilingVerbosity.LAYER_NAMES_ONLY
        self.builder_optimization_level = 3
        self.hardware_compatibility_level = HardwareCompatibilityLevel.NONE
        self.progress_monitor = None
        self._cache = None

    def set_memory_pool_limit(self, pool, pool_size):
        self.workspace = pool_size

    def set_flag(self, flag):
        self.flags.add(BuilderFlag(flag).name)

    def add_optimization_profile(self, profile):
        self.profiles.append(profile.shapes)
        return len(self.profiles) - 1

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
        self._network.model = graph_model
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
        return IBuilderConfig()

    def create_optimization_profile(self):
        return IOptimizationProfile()

    def build_serialized_network(self, network, config):
        io = _io(network.model)
        dynamic = [t["name"] for t in io if t["mode"] == "INPUT" and -1 in t["shape"]]
        if dynamic and not any(all(n in p for n in dynamic) for p in config.profiles):
            self._logger.log(ILogger.Severity.ERROR, "Network has dynamic or shape inputs, but no optimization profile has been defined.")
            return None
        strongly_typed = MAJOR >= 11 or bool(network.flags & (1 << int(NetworkDefinitionCreationFlag.STRONGLY_TYPED)))
        if config.progress_monitor is not None:
            config.progress_monitor.phase_start("Building engine", None, 2)
            for step in range(2):
                config.progress_monitor.step_complete("Building engine", step)
            config.progress_monitor.phase_finish("Building engine")
        engine = {
            "fake_tensorrt": __version__, "onnx": base64.b64encode(network.model.SerializeToString()).decode(), "io": io,
            "profiles": config.profiles, "precision": _layer_precision(network.model, config.flags, strongly_typed),
            "layers": [[n.name, n.op_type] for n in network.model.graph.node],
        }
        return IHostMemory(json.dumps(engine).encode())


class IHostMemory(bytes):
    """Serialized engine bytes (the real one exposes the buffer protocol)."""


class Runtime(_Api):
    def __init__(self, logger):
        self._logger = logger
        self.engine_host_code_allowed = False

    def deserialize_cuda_engine(self, serialized_engine):
        try:
            data = json.loads(bytes(serialized_engine))
        except ValueError:
            self._logger.log(ILogger.Severity.ERROR, "Serialization assertion failed: magic tag mismatch")
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
        layers = [{"Name": name, "LayerType": op, "Inputs": [{"Name": f"{name}_in", key: kind}], "Outputs": [{"Name": f"{name}_out", key: kind}]}
                  for name, op in self._data["layers"]]
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

    def create_execution_context(self):
        return IExecutionContext(self)

    def create_engine_inspector(self):
        return EngineInspector(self._data)


class IExecutionContext(_Api):
    def __init__(self, engine):
        self._engine = engine
        self._shapes = {}
        self._addresses = {}
        self._session = None
        self.profiler = None

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

            self._session = onnxruntime.InferenceSession(base64.b64decode(self._engine._data["onnx"]), providers=["CPUExecutionProvider"])
        return dict(zip([o.name for o in self._session.get_outputs()], self._session.run(None, feeds)))

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
            for name, value in self._run(feeds).items():
                value = np.ascontiguousarray(value)
                ctypes.memmove(self._addresses[name], value.ctypes.data, value.nbytes)
            if self.profiler is not None:
                layers = self._engine._data["layers"]
                for name, _ in layers:
                    self.profiler.report_layer_time(name, (time.perf_counter() - started) * 1e3 / len(layers))

        runtime.enqueue(runtime.streams.get(stream_handle), work)
        return True
