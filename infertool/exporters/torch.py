"""PyTorch sources -> ONNX: factories, TorchScript archives, torch.export programs, pickled modules."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import re
import sys
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from infertool import onnx_io
from infertool.errors import CheckFailed, InfertoolError, first_line
from infertool.exporters.base import ExportedModel, ExportOptions, axis_labels, fixed_axis
from infertool.files import check_input
from infertool.inputs.generated import generated_feeds
from infertool.optional import is_available, require
from infertool.quiet import quiet, user_code
from infertool.reporting import Reporter
from infertool.tensors import bind_unnamed, input_dtypes
from infertool.text import shorten

TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts", ".jit", ".torchscript")
DYNAMO_OPSET = 18  # the dynamo exporter's native opset; it cannot reliably go lower
TORCHSCRIPT_OPSET = 17
# torch.onnx prints progress to stdout and logs freely through these
EXPORT_LOGGERS = ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")


def is_torch_source(source: str) -> bool:
    path = Path(source)
    if path.suffix in (*TORCHSCRIPT_SUFFIXES, ".pt2"):
        return True
    return not os.path.lexists(path) and _split_factory(source) is not None  # os.path: False for a name too long


def _split_factory(source: str) -> tuple[str, str] | None:
    target, sep, attr = source.rpartition(":")
    if not sep or not attr.isidentifier() or not target:
        return None
    return target, attr


@dataclass
class TorchSource:
    model: Any  # nn.Module, ScriptModule or the module of an ExportedProgram
    kind: str  # factory | torchscript | pickle | exported-program
    input_names: list[str]
    required: list[str]
    example: list[Any] | None = None  # example tensors carried by the source (.pt2)


def _load_factory(target: str, attr: str, torch: Any) -> Any:
    if target.endswith(".py"):
        path = Path(target)
        check_input(path, "factory file", hint="write path/to/file.py:function")
        spec = importlib.util.spec_from_file_location(f"infertool_user_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses and pickling look their module up there
        sys.path.insert(0, str(path.resolve().parent))
        try:
            with user_code(f"importing {shorten(path)}"):
                spec.loader.exec_module(module)
        except Exception as exc:
            raise InfertoolError(f"importing {shorten(path)} failed: {shorten(first_line(exc), 160)}", hint="run it with python to see why") from exc
        finally:
            sys.path.pop(0)
    else:
        try:
            with user_code(f"importing {shorten(target)}"):
                module = importlib.import_module(target)
        except Exception as exc:
            raise InfertoolError(
                f"cannot import module '{shorten(target)}'",
                hint="write package.module:function (importable) or path/to/file.py:function", detail=first_line(exc),
            ) from exc
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise InfertoolError(f"'{shorten(attr)}' is not a callable in {shorten(target)}", hint="name a function that returns an nn.Module")
    if inspect.isbuiltin(factory):  # sys:exit, os:abort, builtins:breakpoint
        raise InfertoolError(f"'{shorten(attr)}' in {shorten(target)} is a built-in function, not a model factory", hint="name a Python function that returns an nn.Module")
    try:
        with user_code(f"factory {shorten(target)}:{shorten(attr)}()"):
            model = factory()
    except InfertoolError:
        raise
    except Exception as exc:
        raise InfertoolError(f"factory {shorten(target)}:{shorten(attr)}() raised {shorten(first_line(exc), 160)}", hint="fix the factory, then retry") from exc
    if not isinstance(model, torch.nn.Module):
        raise InfertoolError(
            f"factory {target}:{attr}() returned {type(model).__name__}, not a torch.nn.Module",
            hint="return the model instance from the factory",
        )
    return model


def _load_file(path: Path, trust: bool, torch: Any) -> tuple[Any, str]:
    check_input(path, "source model")
    name = shorten(path)
    if path.suffix == ".pt2":
        try:
            return torch.export.load(str(path)), "exported-program"
        except Exception as exc:
            raise InfertoolError(f"{name} is not a readable torch.export program", hint="save it again with torch.export.save", detail=first_line(exc)) from exc
    if not zipfile.is_zipfile(path):
        raise InfertoolError(
            f"{name} is not a PyTorch archive (TorchScript or torch.save)",
            hint="save with torch.jit.save / torch.export.save, or give a factory file.py:function",
        )
    try:
        with zipfile.ZipFile(path) as archive:
            scripted = any(member.endswith("/constants.pkl") for member in archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InfertoolError(f"{name} is a damaged archive", hint="save the model again", detail=first_line(exc)) from exc
    if scripted:
        try:
            return torch.jit.load(str(path), map_location="cpu"), "torchscript"
        except Exception as exc:
            raise InfertoolError(f"{name} is not a loadable TorchScript archive", hint="save it again with torch.jit.save", detail=first_line(exc)) from exc
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        if not trust:
            raise InfertoolError(
                f"{name} is a pickled object; loading it runs arbitrary code from the file",
                hint="pass --trust-model only if you trust its author, or save a TorchScript / torch.export "
                "archive, or give a factory file.py:function with --weights",
            ) from exc
        try:
            with user_code(f"unpickling {name}"):
                obj = torch.load(str(path), map_location="cpu", weights_only=False)
        except InfertoolError:
            raise
        except Exception as inner:
            raise InfertoolError(f"torch.load could not read {name}", hint="save the model again, or give a factory file.py:function", detail=first_line(inner)) from inner
    if isinstance(obj, Mapping):
        raise InfertoolError(
            f"{name} holds a state dict (weights only), not a model",
            hint="give a factory that builds the model, e.g. model.py:build --weights " + path.name,
        )
    if not isinstance(obj, torch.nn.Module):
        raise InfertoolError(f"{name} holds a {type(obj).__name__}, not a torch.nn.Module", hint="save the nn.Module itself, or give a factory file.py:function")
    return obj, "pickle"


def _signature_names(model: Any, torch: Any) -> tuple[list[str], list[str]]:
    """Forward's parameter names and the required ones."""
    if isinstance(model, torch.jit.ScriptModule):
        arguments = model.forward.schema.arguments[1:]
        return [a.name for a in arguments], [a.name for a in arguments if not a.has_default_value()]
    params = [
        p for p in inspect.signature(model.forward).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    return [p.name for p in params], [p.name for p in params if p.default is p.empty]


def load_source(source: str, options: ExportOptions, torch: Any) -> TorchSource:
    path = Path(source)
    factory = None if os.path.lexists(path) else _split_factory(source)
    if factory is not None:
        model, kind = _load_factory(*factory, torch), "factory"
        if options.weights is not None:
            _load_weights(model, options.weights, torch)
    else:
        if options.weights is not None:
            raise InfertoolError("--weights applies to factory sources only", hint="give file.py:function --weights FILE")
        model, kind = _load_file(path, options.trust_model, torch)
    if kind == "exported-program":
        program = model
        names = list(program.graph_signature.user_inputs)
        example = list(program.example_inputs[0]) if program.example_inputs else None
        return TorchSource(program.module(), kind, names, names, example)
    model.eval()
    names, required = _signature_names(model, torch)
    return TorchSource(model, kind, names, required)


def _load_weights(model: Any, weights: Path, torch: Any) -> None:
    check_input(weights, "weights file")
    try:
        state = torch.load(str(weights), map_location="cpu", weights_only=True)
        model.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state)
    except Exception as exc:
        raise InfertoolError(
            f"--weights {shorten(weights)} does not load into the factory's model",
            hint="give the state dict saved from this model (torch.save(model.state_dict(), path)); --verbose says which keys differ",
            detail=first_line(exc),
        ) from exc


def _to_torch(array: np.ndarray, torch: Any) -> Any:
    if array.dtype.name == "bfloat16":
        return torch.from_numpy(array.astype(np.float32)).to(torch.bfloat16)
    return torch.from_numpy(np.ascontiguousarray(array))


def _to_numpy(tensor: Any, torch: Any) -> np.ndarray:
    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()
    return tensor.numpy()


def _flatten_outputs(result: Any, torch: Any) -> tuple[list[Any], list[str]]:
    if isinstance(result, torch.Tensor):
        return [result], ["output"]
    if isinstance(result, Mapping) and all(isinstance(v, torch.Tensor) for v in result.values()):
        return list(result.values()), [str(k) for k in result]
    leaves, _ = torch.utils._pytree.tree_flatten(result)
    tensors = [leaf for leaf in leaves if isinstance(leaf, torch.Tensor)]
    return tensors, [f"output_{i}" for i in range(len(tensors))]


def _input_layout(loaded: TorchSource, options: ExportOptions) -> tuple[list[str], dict, dict]:
    """The inputs to export (a leading run of forward()'s parameters), their shapes and dtypes."""
    shapes = bind_unnamed(options.input_shapes, loaded.input_names, "--input-shape")
    dtypes = input_dtypes(options.input_dtypes, loaded.input_names)
    for name, tensor in zip(loaded.input_names, loaded.example or []):
        shapes.setdefault(name, tuple(tensor.shape))
        if not options.input_dtypes:
            dtypes[name] = str(tensor.dtype).removeprefix("torch.")
    missing = [n for n in loaded.required if n not in shapes]
    if missing:
        raise InfertoolError(
            f"PyTorch modules carry no input shapes; missing --input-shape for {', '.join(missing)}",
            hint=f"e.g. --input-shape {missing[0]}:1x3x224x224",
        )
    names = [n for n in loaded.input_names if n in shapes]
    if names != loaded.input_names[: len(names)]:
        raise InfertoolError(
            f"inputs {', '.join(names)} skip an earlier forward() parameter",
            hint=f"forward() takes {', '.join(loaded.input_names)} in this order; give shapes for a leading run of them",
        )
    return names, shapes, dtypes


def export_torch(source: str, options: ExportOptions, onnx_path: Path, reporter: Reporter) -> ExportedModel:
    torch = require("torch", "PyTorch sources")
    with reporter.task("loading the PyTorch model"):
        loaded = load_source(source, options, torch)
    names, shapes, dtypes = _input_layout(loaded, options)
    labels = axis_labels(names, {n: len(shapes[n]) for n in names}, options)
    feeds = generated_feeds({n: shapes[n] for n in names}, dtypes, options.seed, options.int_range)
    model = loaded.model

    def reference(inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        with torch.no_grad(), user_code("the model's forward()"):
            outputs, _ = _flatten_outputs(model(*[_to_torch(inputs[n], torch) for n in names]), torch)
        return [_to_numpy(t, torch) for t in outputs]

    with torch.no_grad():
        try:
            with user_code("the model's forward()"):
                sample = model(*[_to_torch(feeds[n], torch) for n in names])
        except InfertoolError:
            raise
        except Exception as exc:
            raise InfertoolError(
                f"the model failed on inputs of shapes {shorten(', '.join(f'{n}={shapes[n]}' for n in names), 120)}",
                hint="check --input-shape and --dtype (--verbose shows the model's error)", detail=first_line(exc),
            ) from exc
    sample_outputs, output_names = _flatten_outputs(sample, torch)
    # torch.export specializes dimensions of size 0 or 1: trace dynamic axes at size 2 at least
    export_shapes = {n: tuple(max(d, 2) if a in labels[n] else d for a, d in enumerate(shapes[n])) for n in names}
    export_feeds = generated_feeds(export_shapes, dtypes, options.seed, options.int_range)
    args = tuple(_to_torch(export_feeds[n], torch) for n in names)
    exported = ExportedModel("pytorch", "", reference, {n: shapes[n] for n in names})
    if _choose_exporter(options, loaded, exported.notes) == "dynamo":
        try:
            with reporter.task("exporting with torch.export (dynamo)"):
                _export_dynamo(model, args, names, output_names, labels, options.opset, onnx_path, torch)
            exported.exporter = "dynamo"
            return exported
        except InfertoolError as exc:
            if options.exporter == "dynamo":
                raise
            refused = exc
            if isinstance(exc, CheckFailed):  # the TorchScript export is checked at another size of the axis
                exported.notes.append(f"torch.export {exc.detail}; fell back to the TorchScript exporter, checked at another size of that axis")
            else:
                why = f"{exc.message}: {shorten(exc.detail, 160)}" if exc.detail else exc.message
                exported.notes.append(f"dynamo export failed ({why}); fell back to the TorchScript exporter")
    else:
        refused = None
    with reporter.task("exporting with the TorchScript exporter"):
        batched_outputs = _batched_outputs(model, args, sample_outputs, output_names, [shapes[n] for n in names], [labels[n] for n in names], torch)
        try:
            _export_torchscript(model, args, names, output_names, batched_outputs, labels, options, onnx_path, torch)
        except InfertoolError:
            if isinstance(refused, CheckFailed):  # torch.export's verdict on the axis is the truer cause
                raise refused from None
            raise
    exported.exporter = "torchscript"
    return exported


def _choose_exporter(options: ExportOptions, loaded: TorchSource, notes: list[str]) -> str:
    if loaded.kind == "torchscript":
        if options.exporter == "dynamo":
            raise InfertoolError("TorchScript archives export only with the TorchScript exporter", hint="use --exporter torchscript or auto")
        if options.exporter == "auto":
            notes.append("TorchScript archive: used the TorchScript exporter")
        return "torchscript"
    if options.exporter == "torchscript" and loaded.kind == "exported-program":
        raise InfertoolError("torch.export programs export only with the dynamo exporter", hint="use --exporter dynamo or auto")
    if options.exporter in ("auto", "dynamo") and not is_available("onnxscript"):
        if options.exporter == "dynamo" or loaded.kind == "exported-program":
            require("onnxscript", "the dynamo exporter")
        notes.append("onnxscript is not installed, so the dynamo exporter is unavailable; used the TorchScript exporter")
        return "torchscript"
    return "torchscript" if options.exporter == "torchscript" else "dynamo"


ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
SUMMARY = re.compile(r"## Exception summary\s*(?:<class '(?:[\w.]*\.)?(?P<type>\w+)'>: )?(?P<text>[^\n]+)")


def root_cause(exc: BaseException) -> str:
    """The innermost exception torch's exporter wraps, as `Type: first line`, without its colour
    codes or its "This is step 1/3 … Next steps" preamble."""
    inner = exc
    while (inner.__cause__ or inner.__context__) is not None:
        inner = inner.__cause__ or inner.__context__
    text = ANSI.sub("", str(inner))
    if inner is exc and (found := SUMMARY.search(text)):
        return f"{found['type']}: {found['text'].strip()}" if found["type"] else found["text"].strip()
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return f"{type(inner).__name__}: {line}" if line else type(inner).__name__


def _export_dynamo(model, args, names, output_names, labels, opset, onnx_path, torch) -> None:
    dims: dict[str, Any] = {}
    dynamic_shapes = {
        name: {axis: dims.setdefault(label, torch.export.Dim(label, min=1)) for axis, label in labels[name].items()}
        for name in names
    }
    big = sum(p.numel() * p.element_size() for p in model.parameters()) >= onnx_io.EXTERNAL_DATA_THRESHOLD
    try:
        with user_code("the model's forward()"), quiet(EXPORT_LOGGERS):
            torch.onnx.export(
                model, args, str(onnx_path), dynamo=True, input_names=names, output_names=output_names,
                dynamic_shapes=dynamic_shapes if any(dynamic_shapes.values()) else None,
                opset_version=opset or DYNAMO_OPSET, external_data=big, verbose=False,
            )
    except InfertoolError:
        raise
    except Exception as exc:
        raise InfertoolError("torch.export could not trace the model", hint="try --exporter torchscript (--verbose shows torch's message)", detail=root_cause(exc)) from exc
    written = onnx_io.load(onnx_path, load_external_data=False)
    if opset is not None and onnx_io.opset(written) != opset:
        raise InfertoolError(
            f"the dynamo exporter wrote opset {onnx_io.opset(written)}, not the requested {opset}",
            hint=f"use --opset {DYNAMO_OPSET} or --exporter torchscript",
        )
    for spec in onnx_io.input_specs(written):
        for axis, label in labels.get(spec.name, {}).items():
            if isinstance(spec.shape[axis], int):
                failure = fixed_axis(spec.name, axis, label, spec.shape[axis], "torch.export specialized it to that size")
                failure.detail = f"specialized axis '{label}' (input '{spec.name}' axis {axis}) to {spec.shape[axis]}"
                raise failure


def _batched_outputs(model, args, sample_outputs, output_names, shapes, labels, torch) -> list[str]:
    """The outputs whose axis 0 is the inputs' batch, at the example's batch and at the export's (at least 2):
    an axis 0 of batch x seq rows, or of a size of its own, is not the batch."""
    batch = next((shape[0] for shape, axes in zip(shapes, labels) if axes.get(0) == "batch"), None)
    if batch is None:
        return []
    traced = next(a.shape[0] for a, axes in zip(args, labels) if axes.get(0) == "batch")
    again = sample_outputs
    if traced != batch:  # a batch of 1 proves nothing: every output of one row has axis 0 of size 1
        with torch.no_grad(), user_code("the model's forward()"):
            again, _ = _flatten_outputs(model(*args), torch)
    return [n for n, t, u in zip(output_names, sample_outputs, again) if t.dim() > 0 and u.dim() > 0 and t.shape[0] == batch and u.shape[0] == traced]


def _export_torchscript(model, args, names, output_names, batched_outputs, labels, options, onnx_path, torch) -> None:
    dynamic_axes = {name: axes for name, axes in labels.items() if axes}
    if options.dynamic_batch:
        dynamic_axes.update({name: {0: "batch"} for name in batched_outputs})
    try:
        with user_code("the model's forward()"), quiet(EXPORT_LOGGERS):
            torch.onnx.export(
                model, args, str(onnx_path), dynamo=False, input_names=names, output_names=output_names,
                dynamic_axes=dynamic_axes or None, opset_version=options.opset or TORCHSCRIPT_OPSET,
                do_constant_folding=True,
            )
    except InfertoolError:
        raise
    except Exception as exc:
        raise InfertoolError("the TorchScript exporter could not export the model", hint="rerun with --verbose for torch's message, or --debug for the trace", detail=first_line(exc)) from exc
