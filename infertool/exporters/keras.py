"""Keras / TensorFlow sources -> ONNX through tf2onnx: `.keras`, `.h5` and SavedModel directories."""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from infertool.errors import CheckFailed, InfertoolError, first_line
from infertool.exporters.base import ExportedModel, ExportOptions, axis_labels
from infertool.files import check_input
from infertool.optional import require
from infertool.quiet import quiet, user_code
from infertool.reporting import Reporter
from infertool.tensors import bind_unnamed, input_dtypes
from infertool.text import shorten

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
TF2ONNX_MAX_OPSET = 18
DEFAULT_OPSET = 17


def is_keras_source(source: str) -> bool:
    path = Path(source)
    return path.suffix in KERAS_SUFFIXES or os.path.isfile(path / "saved_model.pb")  # os.path: False for any unusable path


def _import_tensorflow() -> tuple[Any, Any]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with quiet(native_stderr=True):
        tf = require("tensorflow", "Keras sources")
        tf2onnx = require("tf2onnx", "Keras sources")
    tf.get_logger().setLevel("ERROR")
    return tf, tf2onnx


def _custom_objects(modules: tuple[str, ...]) -> dict[str, Any]:
    """Import each module (registering its serializable classes) and offer its public callables."""
    objects: dict[str, Any] = {}
    for name in modules:
        try:
            with user_code(f"importing {shorten(name)}"):
                module = importlib.import_module(name)
        except InfertoolError:
            raise
        except Exception as exc:
            raise InfertoolError(f"--custom-objects: cannot import '{shorten(name)}'", hint="make it importable (PYTHONPATH)", detail=first_line(exc)) from exc
        objects.update({k: v for k, v in vars(module).items() if not k.startswith("_") and (inspect.isclass(v) or inspect.isfunction(v))})
    return objects


def _load_keras(path: Path, options: ExportOptions) -> Any:
    import keras

    try:
        with user_code(f"loading {shorten(path)}"), quiet(native_stderr=True):  # custom layers and trusted Lambdas run here
            return keras.models.load_model(
                str(path), compile=False, safe_mode=not options.trust_model,
                custom_objects=_custom_objects(options.custom_objects),
            )
    except InfertoolError:
        raise
    except Exception as exc:
        text = str(exc)
        if "safe_mode" in text or ("Lambda" in text and "unsafe" in text.lower()):
            raise InfertoolError(
                f"{path} has a Lambda layer, whose code runs when the model is loaded",
                hint="pass --trust-model only if you trust its author",
            ) from exc
        if "Unknown" in text or "custom" in text.lower():
            raise InfertoolError(
                f"{shorten(path)} uses layers Keras does not know",
                hint="pass --custom-objects your.module (the module that defines the custom layers)", detail=first_line(exc),
            ) from exc
        raise InfertoolError(f"Keras cannot load {shorten(path)}", hint="check the file; --verbose shows Keras's message", detail=first_line(exc)) from exc


def _functional(model: Any, shapes: Mapping[str, tuple[int, ...]]) -> Any:
    """A functional view of the model: tf2onnx fails on Sequential, subclassed models have no inputs."""
    import keras

    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if inputs:
        return keras.Model(model.inputs, model.outputs) if isinstance(model, keras.Sequential) else model
    if len(shapes) != 1:
        raise InfertoolError(
            "this subclassed Keras model has no defined inputs",
            hint="give exactly one --input-shape name:1x... so infertool can call it, or save a functional model",
        )
    (name, shape), = shapes.items()
    tensor = keras.Input(shape[1:], name=name)
    return keras.Model(tensor, model(tensor))


def export_keras(source: str, options: ExportOptions, onnx_path: Path, reporter: Reporter) -> ExportedModel:
    path = Path(source)
    if not path.is_dir():  # a SavedModel is a folder; a .keras or .h5 file must be a regular file
        check_input(path, "source model")
    opset = options.opset or DEFAULT_OPSET
    if opset > TF2ONNX_MAX_OPSET:
        raise InfertoolError(f"tf2onnx supports opset {TF2ONNX_MAX_OPSET} at most, not {opset}", hint=f"use --opset {TF2ONNX_MAX_OPSET}")
    with reporter.task("loading TensorFlow"):
        tf, tf2onnx = _import_tensorflow()
    with reporter.task(f"loading {path.name}"):
        if path.is_dir():
            function, names, signature = _saved_model(path, tf)
        else:
            function, names, signature = _keras_model(path, options, tf)
    shapes = bind_unnamed(options.input_shapes, names, "--input-shape")
    dtypes = input_dtypes(options.input_dtypes, names, default="")
    labels = axis_labels(names, {n: len(signature[n].shape) for n in names}, options)
    specs, example_shapes = [], {}
    for name in names:
        spec = signature[name]
        dims = list(spec.shape)
        given = shapes.get(name)
        if given is not None and len(given) != len(dims):
            raise InfertoolError(f"input '{name}' has rank {len(dims)}, but --input-shape gives {len(given)} dims", hint=f"give {len(dims)} dimensions")
        for axis in range(len(dims)):
            if axis in labels[name]:
                dims[axis] = None
            elif dims[axis] is None:
                dims[axis] = given[axis] if given is not None else 1 if axis == 0 else None
        dtype = tf.as_dtype(dtypes[name]) if dtypes[name] else spec.dtype
        specs.append(tf.TensorSpec(dims, dtype, name=name))
        example = given or tuple(1 if axis == 0 and d is None else d for axis, d in enumerate(spec.shape))
        if all(isinstance(d, int) for d in example):
            example_shapes[name] = tuple(example)
    with reporter.task("converting with tf2onnx"):
        try:
            with quiet(native_stderr=True):
                model_proto = _from_function(function, specs, opset, tf, tf2onnx)
        except Exception as exc:
            raise InfertoolError("tf2onnx could not convert the model", hint="try another --opset; --verbose shows tf2onnx's message", detail=first_line(exc)) from exc
    extra = [i.name for i in model_proto.graph.input if i.name not in names]
    if extra:  # the validation would feed noise into the model's own state and prove nothing
        raise CheckFailed(
            f"tf2onnx turned tensors the model holds into extra graph inputs ({shorten(', '.join(extra), 120)}); nothing was written",
            hint="report this model; meanwhile save the layer's state as weights (a Keras variable), not a plain tensor",
        )
    _name_dims(model_proto, names, labels, options.dynamic_batch)
    import onnx

    onnx.save_model(model_proto, str(onnx_path))

    def reference(inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        result = function(*[tf.constant(inputs[n]) for n in names])
        return [np.asarray(o) for o in tf.nest.flatten(result)]  # tf2onnx orders outputs the same way

    return ExportedModel("keras", "tf2onnx", reference, example_shapes)


def _from_function(function: Callable, specs: list[Any], opset: int, tf: Any, tf2onnx: Any) -> Any:
    """tf2onnx's from_function, but with only the signature's tensors as inputs: tensors the function
    captures (a Normalization layer's mean and variance, which Keras 3 keeps as plain tensors) are
    frozen into constants, as from_keras does, instead of becoming extra graph inputs."""
    from tf2onnx import tf_loader

    concrete = function.get_concrete_function(*specs)
    inputs = [t.name for t in concrete.inputs[: len(specs)]]  # captured tensors come after the arguments
    outputs = [t.name for t in concrete.outputs if t.dtype != tf.dtypes.resource]
    frozen = tf_loader.from_function(concrete, inputs, outputs)
    model_proto, _ = tf2onnx.convert.from_graph_def(
        frozen, name=concrete.name, input_names=inputs, output_names=outputs, opset=opset,
        tensors_to_rename=tf2onnx.convert.tensor_names_from_structed(concrete, inputs, outputs),
    )
    return model_proto


def _keras_model(path: Path, options: ExportOptions, tf: Any) -> tuple[Callable, list[str], dict[str, Any]]:
    model = _load_keras(path, options)
    shapes = {k: v for k, v in options.input_shapes.items() if k is not None}
    model = _functional(model, shapes or dict(options.input_shapes))
    names = [t.name for t in model.inputs]
    signature = {t.name: tf.TensorSpec(t.shape, t.dtype, name=t.name) for t in model.inputs}

    outputs = list(getattr(model, "output_names", None) or [t._keras_history[0].name for t in model.outputs])

    @tf.function
    def function(*args: Any) -> Any:
        result = model(list(args) if len(args) > 1 else args[0], training=False)
        # a dict makes tf2onnx name the ONNX outputs after the model's outputs
        return dict(zip(outputs, tf.nest.flatten(result)))

    return function, names, signature


def _saved_model(path: Path, tf: Any) -> tuple[Callable, list[str], dict[str, Any]]:
    try:
        with quiet(native_stderr=True):
            loaded = tf.saved_model.load(str(path))
    except Exception as exc:
        raise InfertoolError(f"TensorFlow cannot load the SavedModel {shorten(path)}", hint="check the folder; --verbose shows TensorFlow's message", detail=first_line(exc)) from exc
    signature = loaded.signatures.get("serving_default")
    if signature is None:
        raise InfertoolError(
            f"SavedModel {path} has no 'serving_default' signature",
            hint=f"its signatures are: {', '.join(loaded.signatures) or '(none)'}; re-save it with one",
        )
    _, kwargs = signature.structured_input_signature
    names = sorted(kwargs)

    @tf.function
    def function(*args: Any) -> Any:
        return signature(**dict(zip(names, args)))

    function._infertool_keep = loaded  # keep the loaded object (and its variables) alive
    return function, names, {n: kwargs[n] for n in names}


def _name_dims(model: Any, names: list[str], labels: dict[str, dict[int, str]], dynamic_batch: bool) -> None:
    """tf2onnx leaves symbolic dims as `unk__N`: name them after --dynamic-axis labels and `batch`."""
    from infertool.onnx_io import rename_dims

    renames: dict[tuple[str, int], str] = {(n, axis): label for n in names for axis, label in labels[n].items()}
    symbols = {}
    for value in model.graph.input:
        for axis, dim in enumerate(value.type.tensor_type.shape.dim):
            if (value.name, axis) in renames and dim.dim_param:
                symbols[dim.dim_param] = renames[(value.name, axis)]
    for value in model.graph.output:
        for axis, dim in enumerate(value.type.tensor_type.shape.dim):
            if dim.dim_param in symbols:
                renames[(value.name, axis)] = symbols[dim.dim_param]
            elif axis == 0 and dim.dim_param and dynamic_batch:
                renames[(value.name, axis)] = "batch"
    rename_dims(model, renames)
