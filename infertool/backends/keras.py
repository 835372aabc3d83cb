"""Framework baselines for Keras sources (`--source model.keras`, `.h5` or a SavedModel directory, as
`convert` takes them): `model.predict_on_batch` (`keras`), or the model under an XLA-compiled
tf.function (`keras-xla`), compile time reported apart. Host arrays in and out, as Keras serves them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infertool.backends import registry
from infertool.backends.base import Backend, RowFailed, Runner, RunnerInfo, RunnerOptions
from infertool.backends.torch import SourceOptions
from infertool.dtypes import numpy_dtype
from infertool.errors import InfertoolError, first_line
from infertool.optional import install_hint, is_available
from infertool.quiet import quiet
from infertool.tensors import format_shape

if TYPE_CHECKING:
    import numpy as np

    from infertool.onnx_io import ModelInfo


class _Loaded:
    """A Keras model (or a SavedModel's serving signature) and its input names, in call order."""

    def __init__(self, source: SourceOptions):
        from infertool.exporters.base import ExportOptions
        from infertool.exporters.keras import _functional, _import_tensorflow, _load_keras, is_keras_source

        self.tf, _ = _import_tensorflow()
        path = Path(source.source)
        if not path.exists() or not is_keras_source(source.source):
            raise InfertoolError(f"--source {source.source} is not a Keras model", hint="give the .keras, .h5 or SavedModel directory the ONNX was converted from")
        self.model, self.signature = None, None
        if path.is_dir():
            loaded = self.tf.saved_model.load(str(path))
            self.signature = loaded.signatures["serving_default"]
            self.signature._infertool_keep = loaded  # the variables live as long as the signature
            self.names = sorted(self.signature.structured_input_signature[1])
        else:
            self.model = _functional(_load_keras(path, ExportOptions(trust_model=source.trust_model)), {})
            self.names = [t.name for t in self.model.inputs]

    def call(self, arrays: list[Any]) -> Any:
        """The model on tensors, for tf.function."""
        if self.signature is not None:
            return self.signature(**dict(zip(self.names, arrays)))
        return self.model(arrays if len(arrays) > 1 else arrays[0], training=False)


class KerasBackend(Backend):
    name = "keras"
    description = "Keras predict_on_batch on the --source model (.keras, .h5, SavedModel) the ONNX came from"
    extra = "keras"
    gate_settings = ("keras_call",)
    option_group = SourceOptions
    xla = False
    _loaded: dict = {}

    def unavailable_reason(self) -> str | None:
        return None if is_available("tensorflow") else f"TensorFlow is not installed ({install_hint('tensorflow')})"

    def _require_source(self, source: SourceOptions) -> None:
        if not source.source:
            raise InfertoolError(
                f"backend {self.name} runs the Keras model the ONNX came from: give it with --source",
                hint="e.g. bench --source model.keras, as given to convert",
            )

    def load(self, source: SourceOptions) -> _Loaded:
        self._require_source(source)
        key = (source.source, source.trust_model)
        if key not in self._loaded:
            self._loaded[key] = _Loaded(source)
        return self._loaded[key]

    def check(self, model: ModelInfo, options: RunnerOptions) -> None:
        names, onnx_names = self.load(options.group(SourceOptions)).names, [s.name for s in model.inputs]
        if sorted(names) != sorted(onnx_names):
            raise InfertoolError(
                f"--source {options.group(SourceOptions).source} does not match {model.path.name}: its inputs are {', '.join(names)}, "
                f"the ONNX model's {', '.join(onnx_names)}", hint="give the source the ONNX model was converted from",
            )

    def open(self, artifact: Path, options: RunnerOptions) -> Runner:
        return KerasRunner(artifact, self, options)


class KerasXlaBackend(KerasBackend):
    name = "keras-xla"
    description = "the Keras --source model under tf.function(jit_compile=True) (XLA); compile time reported apart"
    xla = True


for _backend in (KerasBackend(), KerasXlaBackend()):
    registry.register(_backend)


class KerasRunner(Runner):
    def __init__(self, model: Path, backend: KerasBackend, options: RunnerOptions):
        super().__init__(model)
        self.backend, self.options = backend, options
        self.loaded: _Loaded | None = None
        self.function: Any = None
        self.compile_seconds: dict[str, float] = {}

    def prepare(self) -> None:
        from infertool import onnx_io

        proto = onnx_io.load(self.model, load_external_data=False)
        self.inputs, self.outputs = onnx_io.input_specs(proto), onnx_io.output_specs(proto)
        self.loaded = self.backend.load(self.options.group(SourceOptions))
        if self.backend.xla:
            self.function = self.loaded.tf.function(lambda *arrays: self.loaded.call(list(arrays)), jit_compile=True)

    def _run(self, arrays: list[np.ndarray]) -> list[Any]:
        """Outputs in the ONNX model's order (tf2onnx orders a Keras model's outputs by name)."""
        loaded = self.loaded
        if self.function is not None:
            outputs = loaded.tf.nest.flatten(self.function(*arrays))
        elif loaded.model is not None:
            outputs = loaded.tf.nest.flatten(loaded.model.predict_on_batch(arrays if len(arrays) > 1 else arrays[0]))
        else:
            return loaded.tf.nest.flatten(loaded.call([loaded.tf.constant(a) for a in arrays]))
        by_name = dict(zip(getattr(loaded.model, "output_names", None) or [], outputs))
        return [by_name[s.name] for s in self.outputs] if set(by_name) == {s.name for s in self.outputs} else outputs

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        import numpy as np

        arrays = [feeds[name] for name in self.loaded.names]
        shapes = ", ".join(f"{n} {format_shape(a.shape)}" for n, a in zip(self.loaded.names, arrays))
        if shapes not in self.compile_seconds:
            started = time.perf_counter()
            try:
                with quiet(native_stderr=True):
                    outputs = self._run(arrays)
            except Exception as exc:
                if self.backend.xla:
                    raise RowFailed(f"XLA compilation failed on inputs {shapes}: {first_line(exc)}") from exc
                raise InfertoolError(f"--source {self.options.group(SourceOptions).source} fails on the ONNX model's inputs ({shapes}): {first_line(exc)}") from exc
            self.compile_seconds[shapes] = round(time.perf_counter() - started, 3)
            self._check(outputs)
        else:
            outputs = self._run(arrays)
        return {s.name: np.asarray(o).astype(numpy_dtype(s.dtype), copy=False) for s, o in zip(self.outputs, outputs)}

    def _check(self, outputs: list[Any]) -> None:
        import numpy as np

        got = [tuple(np.shape(o)) for o in outputs]
        wrong = len(got) != len(self.outputs) or any(
            len(g) != len(s.shape) or any(isinstance(d, int) and d != n for d, n in zip(s.shape, g)) for s, g in zip(self.outputs, got)
        )
        if wrong:
            raise InfertoolError(
                f"--source {self.options.group(SourceOptions).source} returns outputs of shapes {', '.join(format_shape(g) for g in got)}, "
                f"the ONNX model's are {', '.join(format_shape(s.shape) for s in self.outputs)}",
                hint="give the source the ONNX model was converted from",
            )

    def info(self) -> RunnerInfo:
        tf = self.loaded.tf if self.loaded else None
        return RunnerInfo(settings={
            "tensorflow": tf.__version__ if tf else None, "keras_call": "tf.function(jit_compile=True)" if self.backend.xla else "predict_on_batch",
            "source": self.options.group(SourceOptions).to_dict(), "gpus": len(tf.config.list_physical_devices("GPU")) if tf else 0,
            # the first call per shape: XLA compilation (keras-xla) or tracing (keras), not in the timings
            "compile_seconds": dict(self.compile_seconds) if self.backend.xla else None,
        })
