"""Tensors on disk: ONNX `.pb` test-data folders (read and written) and `.npz` written for `--inputs`."""

from __future__ import annotations

import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from infertool.dtypes import BY_ONNX, from_numpy, numpy_dtype, numpy_lacks, widened
from infertool.errors import InfertoolError, first_line
from infertool.files import read_bytes
from infertool.inputs.arrays import check_size
from infertool.tensors import TensorSpec
from infertool.text import shorten

PROTOBUF_LIMIT = 2**31  # protobuf cannot parse a message of 2 GiB or more


def pb_dir(path: Path, inputs: int) -> Path:
    """A `test_data_set_N` dir itself, or a model-zoo folder holding them (the first is used);
    for a model without inputs, one with output_K.pb files alone."""
    wanted = "input_*.pb" if inputs else "output_*.pb"
    if any(path.glob(wanted)):
        return path
    sets = sorted(path.glob("test_data_set_*"))
    if sets and any(sets[0].glob(wanted)):
        return sets[0]
    raise InfertoolError(f"{shorten(path)} has no input_*.pb files", hint="use the test_data_set_N/input_K.pb layout, .npz, or images")


def _pb_file_specs(specs: Sequence[TensorSpec | str]) -> list[TensorSpec]:
    return [s if isinstance(s, TensorSpec) else TensorSpec(s, "", ()) for s in specs]


def read_pb_dir(path: Path, specs: Sequence[TensorSpec | str], prefix: str = "input") -> dict[str, Any]:
    """Values from `<prefix>_K.pb`, each keyed by its proto's name, else by the K-th spec's name.

    File K is read as the K-th spec's type says: a TensorProto, or a SequenceProto / OptionalProto
    for a sequence or optional (a bare name stands for a tensor).
    """
    specs = _pb_file_specs(specs)
    files = sorted(path.glob(f"{prefix}_*.pb"), key=lambda p: int(p.stem.rpartition("_")[2]) if p.stem.rpartition("_")[2].isascii() and p.stem.rpartition("_")[2].isdigit() else 0)
    values = {}
    for index, file in enumerate(files):
        container = specs[index].container if index < len(specs) else ()
        try:
            name, value = _read_value(read_bytes(file, "tensor file", PROTOBUF_LIMIT), container, file)
        except InfertoolError:
            raise
        except Exception as exc:
            kind = {"sequence": "SequenceProto", "optional": "OptionalProto", "map": "MapProto"}.get(container[0] if container else "", "TensorProto")
            raise InfertoolError(f"{shorten(file)} is not a readable ONNX {kind}", hint="write it with onnx.numpy_helper", detail=first_line(exc)) from exc
        values[name or (specs[index].name if index < len(specs) else f"{prefix}_{index}")] = value
    return values


def _proto_dtype(proto) -> np.dtype:
    found = BY_ONNX.get(proto.data_type)
    return np.dtype(np.uint8) if found is None or found.name == "string" else numpy_dtype(found.name)


def _read_value(data: bytes, container: tuple[str, ...], file: Path) -> tuple[str, Any]:
    import onnx
    from onnx import numpy_helper

    kind = container[0] if container else "tensor"
    proto = {"sequence": onnx.SequenceProto, "optional": onnx.OptionalProto, "map": onnx.MapProto}.get(kind, onnx.TensorProto)()
    proto.ParseFromString(data)
    if kind == "tensor":  # refused before numpy allocates what the header declares
        if proto.data_location == onnx.TensorProto.EXTERNAL:
            raise InfertoolError(f"{shorten(file)} keeps its data in another file", hint="save the tensor with its data inside (numpy_helper.from_array)")
        check_size(f"tensor {shorten(file)}", tuple(proto.dims), _proto_dtype(proto), hint="check the .pb file")
    read = {"sequence": numpy_helper.to_list, "optional": numpy_helper.to_optional, "map": numpy_helper.to_dict}.get(kind, numpy_helper.to_array)
    return proto.name, read(proto)


def write_pb_dir(values: Mapping[str, Any], folder: Path, prefix: str = "output", specs: Sequence[TensorSpec] = ()) -> None:
    """`<prefix>_K.pb` per value, in ONNX's own types: a TensorProto of the tensor's element type
    (bfloat16, float8, int4 and strings included), a SequenceProto, an OptionalProto."""
    from onnx import numpy_helper

    containers = {s.name: s.container for s in specs}
    folder.mkdir(parents=True, exist_ok=True)
    for index, (name, value) in enumerate(values.items()):
        kind = "optional" if value is None else (containers.get(name) or (("sequence",) if isinstance(value, list) else ("tensor",)))[0]
        write = {"sequence": numpy_helper.from_list, "optional": numpy_helper.from_optional}.get(kind)
        proto = write(value, name) if write else numpy_helper.from_array(np.asarray(value), name)
        (folder / f"{prefix}_{index}.pb").write_bytes(proto.SerializeToString())


def write_npz(arrays: Mapping[str, Any], path: Path) -> list[str]:
    """An `.npz` that `np.load(allow_pickle=False)` and `--inputs` read back, whatever the names:
    strings as unicode arrays; types numpy lacks widened (their values kept), which the notes returned say."""
    notes = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, value in arrays.items():
            if not isinstance(value, np.ndarray):
                raise InfertoolError(f"output '{name}' is not a tensor ({type(value).__name__}): .npz holds tensors", hint="save to a folder (-o outputs) for output_K.pb files")
            dtype = from_numpy(value.dtype)
            if dtype == "string":
                value = np.vectorize(as_text, otypes=[str])(value) if value.size else value.astype(str)
            elif numpy_lacks(dtype):
                value = widened(value)
                notes.append(f"output '{name}' is {dtype}, which .npz cannot hold: saved as {value.dtype} (same values); a .pb folder keeps the type")
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)
    return notes


def as_text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
