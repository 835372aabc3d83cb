"""Reading and writing ONNX files: friendly errors, IO specs, external data past 2 GB."""

from __future__ import annotations

from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from infertool.errors import InfertoolError, first_line
from infertool.specs import ONNX_DTYPES, TensorSpec

# protobuf cannot serialize a message of 2 GiB or more; stay clear of it
EXTERNAL_DATA_THRESHOLD = 1_800_000_000


def load(path: Path, load_external_data: bool = True) -> onnx.ModelProto:
    if not path.is_file():
        raise InfertoolError(f"model file {path} not found", hint="check the path")
    try:
        return onnx.load(str(path), load_external_data=load_external_data)
    except (DecodeError, onnx.onnx_cpp2py_export.checker.ValidationError, OSError, ValueError) as exc:
        raise InfertoolError(
            f"{path} is not a readable ONNX model ({first_line(exc)})",
            hint="re-export it, or check that its external data file sits beside it",
        ) from exc


def opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def _spec(value: onnx.ValueInfoProto) -> TensorSpec:
    tensor = value.type.tensor_type
    dims = []
    for dim in tensor.shape.dim:
        if dim.HasField("dim_value"):
            dims.append(dim.dim_value)
        else:
            dims.append(dim.dim_param or None)
    return TensorSpec(value.name, ONNX_DTYPES.get(tensor.elem_type, f"onnx:{tensor.elem_type}"), tuple(dims))


def input_specs(model: onnx.ModelProto) -> list[TensorSpec]:
    initializers = {i.name for i in model.graph.initializer}
    return [_spec(v) for v in model.graph.input if v.name not in initializers]


def output_specs(model: onnx.ModelProto) -> list[TensorSpec]:
    return [_spec(v) for v in model.graph.output]


def rename_dims(model: onnx.ModelProto, names: dict[tuple[str, int], str]) -> None:
    """Set `dim_param` of (tensor name, axis) pairs among the graph's inputs and outputs."""
    for value in [*model.graph.input, *model.graph.output]:
        for axis, dim in enumerate(value.type.tensor_type.shape.dim):
            label = names.get((value.name, axis))
            if label is not None:
                dim.dim_param = label


def external_data_path(path: Path) -> Path:
    return path.with_name(path.name + ".data")


def save(model: onnx.ModelProto, path: Path) -> bool:
    """Write `model` to `path`; past ~1.8 GB of weights they go to `<name>.data` beside it.

    Returns whether external data was used.
    """
    weights = sum(t.ByteSize() for t in model.graph.initializer)
    external = weights >= EXTERNAL_DATA_THRESHOLD
    if external:
        onnx.save_model(
            model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
            location=external_data_path(path).name, size_threshold=1024,
        )
    else:
        onnx.save_model(model, str(path))
    return external
