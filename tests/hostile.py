"""Hostile material for the fault tests: damaged files, odd graphs, bad baselines, awkward paths.

Every builder writes into a folder and returns the path; `sandbox` builds the whole set once.
"""

import json
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from onnx_models import image_classifier, mlp, two_inputs

# ---------------------------------------------------------------- models


def _save(graph, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def identity(path: Path, name_in="x", name_out="y", elem=TensorProto.FLOAT, shape=("batch", 4)) -> Path:
    graph = helper.make_graph(
        [helper.make_node("Identity", [name_in], [name_out])], "g",
        [helper.make_tensor_value_info(name_in, elem, list(shape))], [helper.make_tensor_value_info(name_out, elem, list(shape))],
    )
    return _save(graph, path)


def endless_loop(path: Path) -> Path:
    """x[1,16] -> a Loop with no trip count whose condition stays true: it never ends."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Add", ["v_in", "one"], ["v_out"])], "body",
        [helper.make_tensor_value_info("iter", TensorProto.INT64, []), helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_in", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []), helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])],
    )
    graph = helper.make_graph(
        [helper.make_node("Loop", ["", "cond", "x"], ["y"], name="spin", body=body)], "endless",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor("cond", TensorProto.BOOL, [], [True])],
    )
    return _save(graph, path)


def loops_as_told(path: Path) -> Path:
    """x[batch,16] -> a Loop of max(x) steps -> MatMul -> y[batch,4]: quick on small inputs, endless
    on a sample holding 1e15 (a model that passes one probing inference and hangs on later data)."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Add", ["v_in", "one"], ["v_out"])], "body",
        [helper.make_tensor_value_info("iter", TensorProto.INT64, []), helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_in", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []), helper.make_tensor_value_info("v_out", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])],
    )
    nodes = [helper.make_node("ReduceMax", ["x"], ["top"], keepdims=0), helper.make_node("Cast", ["top"], ["steps"], to=TensorProto.INT64),
             helper.make_node("Loop", ["steps", "cond", "x"], ["looped"], name="told", body=body), helper.make_node("MatMul", ["looped", "w"], ["y"])]
    graph = helper.make_graph(
        nodes, "told", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor("cond", TensorProto.BOOL, [], [True]), numpy_helper.from_array(np.full((16, 4), 0.1, np.float32), "w")],
    )
    return _save(graph, path)


def constant_outputs(path: Path) -> Path:
    """No inputs; one output straight from an initializer, one from a Constant node."""
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.ones(3, np.float32)))], "const", [],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [3]), helper.make_tensor_value_info("w", TensorProto.FLOAT, [2])],
        [numpy_helper.from_array(np.full(2, 0.5, np.float32), "w")],
    )
    return _save(graph, path)


def scalar_input(path: Path) -> Path:
    """A rank-0 input beside a batched one: t (scalar) * x[batch,4]."""
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "t"], ["y"])], "scalar",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4]), helper.make_tensor_value_info("t", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
    )
    return _save(graph, path)


def renamed_outputs(path: Path) -> Path:
    """The mlp's graph with its output called `z` instead of `y`."""
    model = onnx.load(str(mlp(path)))
    model.graph.node[-1].output[0] = "z"
    model.graph.output[0].name = "z"
    onnx.save(model, str(path))
    return path


def symbolic_shape_gap(path: Path) -> Path:
    """x[batch,16] -> MatMul (a 4 KiB weight) -> Reshape -> com.microsoft Inverse: onnxruntime runs
    it, but its symbolic shape inference cannot finish, and then saves scratch files in the cwd."""
    weight = numpy_helper.from_array(np.eye(16, dtype=np.float32) * 2, "w")
    shape = numpy_helper.from_array(np.array([-1, 4, 4], np.int64), "shape")
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Reshape", ["h", "shape"], ["r"]),
        helper.make_node("Inverse", ["r"], ["y"], domain="com.microsoft"),
    ]
    graph = helper.make_graph(
        nodes, "gap", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4, 4])], [weight, shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def non_utf8_names(path: Path) -> Path:
    data = identity(path, "xx", "yy").read_bytes().replace(b"yy", b"\xff\xfe")
    path.write_bytes(data)
    return path


MODELS = {
    "ansi.onnx": lambda p: identity(p, "\x1b[31mx\x1b]0;pwned\x07", "[/red]y\x1b[2J"),
    "nonutf8.onnx": non_utf8_names,
    "elem99.onnx": lambda p: identity(p, elem=99),
    "negdim.onnx": lambda p: identity(p, shape=(-3, 4)),
    "hugedim.onnx": lambda p: identity(p, shape=(2**40, 2**40)),
    "rank1001.onnx": lambda p: identity(p, shape=(1,) * 1001),
    "garbage.onnx": lambda p: p.write_bytes(b"\x08\x07garbage" * 10) and p,
    "empty.onnx": lambda p: p.write_bytes(b"") or p,
}


# ---------------------------------------------------------------- array files


def npz_bytes(arrays: dict, compressed: bool = False) -> bytes:
    import io

    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return buffer.getvalue()


def npy_header(shape, descr="<f4") -> bytes:
    header = repr({"descr": descr, "fortran_order": False, "shape": tuple(shape)}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def damaged_inputs(folder: Path) -> dict[str, Path]:
    """Bad --inputs for the mlp (input x[batch,16] float32)."""
    good = npz_bytes({"x": np.ones((2, 16), np.float32)})
    compressed = bytearray(npz_bytes({"x": np.arange(64 * 16, dtype=np.float32).reshape(64, 16)}, compressed=True))
    compressed[80:90] = b"\xff" * 10  # inside the deflate stream
    bad_crc = bytearray(good)
    bad_crc[good.index(b"\x93NUMPY") + 200] ^= 0xFF  # a data byte: the CRC no longer matches
    files = {
        "empty.npz": b"",
        "truncated.npz": good[: len(good) // 2],
        "badcrc.npz": bytes(bad_crc),
        "deflate.npz": bytes(compressed),
        "badheader.npy": b"\x93NUMPY\x01\x00" + struct.pack("<H", 22) + b"{'descr': '<f4', ((((\n",
        "hugeshape.npy": npy_header((2**40, 16)),
        "truncated.npy": npy_header((4, 16)) + b"\x00" * 10,
        "zerobatch.npz": npz_bytes({"x": np.ones((0, 16), np.float32)}),
    }
    made = {}
    for name, data in files.items():
        (folder / name).write_bytes(data)
        made[name] = folder / name
    made["hugemember.npz"] = _zip(folder / "hugemember.npz", {"x.npy": npy_header((2**20, 2**20))})
    made["pickle.npz"] = _zip(folder / "pickle.npz", {"x.npy": npy_header((2,), descr="|O") + b"\x80\x04N."})
    made["rawmember.npz"] = _zip(folder / "rawmember.npz", {"x": b"\x80\x04\x95 not an array"})
    return made


def image_bomb(path: Path, width: int = 100_000, height: int = 100_000) -> Path:
    """A PNG whose header declares width x height pixels (10^10), with no pixel data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


# ---------------------------------------------------------------- baselines


def bench_result(median=1.0) -> dict:
    def stats() -> dict:
        return dict.fromkeys(("min", "mean", "median", "p90", "p95", "p99", "max", "std"), median)

    row = {"backend": "ort-cpu", "batch": 1, "precision": "fp32", "input_shapes": {}, "settings": {}, "latency_mode": "end_to_end",
           "latency_ms": stats(), "timings_ms": {"end_to_end": stats()}}
    return {"schema": "infertool.bench/1", "model": {"path": "m.onnx", "sha256": "0"}, "env": {}, "rows": [row]}


def _with_row(change) -> str:
    data = bench_result()
    change(data["rows"][0])
    return json.dumps(data)


BASELINES = {  # files that are not infertool bench results, each in its own way
    "rows-dict.json": json.dumps({**bench_result(), "rows": {"a": 1}}),
    "row-null.json": json.dumps({**bench_result(), "rows": [None]}),
    "row-int.json": json.dumps({**bench_result(), "rows": [7]}),
    "median-string.json": _with_row(lambda r: r["latency_ms"].update(median="fast")),
    "median-list.json": _with_row(lambda r: r["latency_ms"].update(median=[1, 2])),
    "median-null.json": _with_row(lambda r: r["latency_ms"].update(median=None)),
    "median-nan.json": _with_row(lambda r: r["latency_ms"].update(median=float("nan"))),
    "timings-nan.json": _with_row(lambda r: r["timings_ms"]["end_to_end"].update(median=float("nan"))),
    "no-backend.json": _with_row(lambda r: r.pop("backend")),
    "no-latency.json": _with_row(lambda r: r.pop("latency_ms")),
    "model-list.json": json.dumps({**bench_result(), "model": [1]}),
    "nested.json": "[" * 10_000 + "]" * 10_000,
    "not-json.json": "{not json",
    "null.json": "null",
    "other-schema.json": json.dumps({**bench_result(), "schema": "x/1"}),
    "binary.json": "\udcff\udcfe\x00\x01" * 50,
}


def bad_baselines(folder: Path) -> dict[str, Path]:
    for name, text in BASELINES.items():
        (folder / name).write_bytes(text.encode("utf-8", "surrogateescape"))
    return {name: folder / name for name in BASELINES}


# ---------------------------------------------------------------- factories


FACTORIES = '''
import sys


def exits_with_text():
    sys.exit("the factory gave up")


def exits():
    sys.exit()


def raises_base_exception():
    raise BaseException("not an Exception")


def prints_and_returns_junk():
    print("noise on stdout")
    return "not a module"
'''


# ---------------------------------------------------------------- the sandbox


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def sandbox(root: Path) -> dict[str, Path]:
    """Everything the fault tests use, under `root`."""
    paths = {"mlp": mlp(root / "mlp.onnx"), "two": two_inputs(root / "two.onnx"), "img": image_classifier(root / "img.onnx")}
    paths["loop"] = endless_loop(root / "loop.onnx")
    paths["const"] = constant_outputs(root / "const.onnx")
    paths["scalar"] = scalar_input(root / "scalar.onnx")
    paths["renamed"] = renamed_outputs(root / "renamed.onnx")
    for name, build in MODELS.items():
        paths[name] = build(root / name)
    (root / "inputs").mkdir()
    paths.update(damaged_inputs(root / "inputs"))
    np.savez(root / "good.npz", x=np.ones((2, 16), np.float32))
    paths["good.npz"] = root / "good.npz"
    paths["bomb.png"] = image_bomb(root / "bomb.png")
    (root / "notimage.png").write_bytes(b"\x89PNG junk")
    paths["notimage.png"] = root / "notimage.png"
    (root / "baselines").mkdir()
    paths.update(bad_baselines(root / "baselines"))
    (root / "labels-binary.txt").write_bytes(b"cat\x00dog\x00\xff\xfe" * 4)
    paths["labels-binary.txt"] = root / "labels-binary.txt"
    (root / "factories.py").write_text(FACTORIES)
    paths["factories.py"] = root / "factories.py"
    paths["fifo"] = fifo(root / "fifo.npz")
    (root / "existing.json").write_text('{"keep": true}\n')
    paths["existing.json"] = root / "existing.json"
    (root / "afile").write_text("a file, not a folder\n")
    paths["afile"] = root / "afile"
    (root / "adir").mkdir()
    (root / "adir" / "notes.txt").write_text("mine\n")
    paths["adir"] = root / "adir"
    os.symlink(root / "nowhere.json", root / "dangling.json")
    paths["dangling.json"] = root / "dangling.json"
    os.symlink(root / "loop", root / "loop")
    paths["symloop"] = root / "loop"
    (root / "ranges.json").write_text("my notes, not a cache\n")
    paths["not-a-cache"] = root / "ranges.json"
    return paths
