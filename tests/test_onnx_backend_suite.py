"""The ONNX project's own backend test suite through `infertool run`.

`onnx.backend.test.loader` builds the node cases (a one-node model, inputs, expected outputs) of the
installed onnx. Each is written out in the suite's layout (model.onnx, test_data_set_0/input_K.pb,
output_K.pb) by onnx's own serializers. ONNX Runtime runs each case directly first; wherever it can,
`infertool run --inputs test_data_set_0 -o OUT` must run it too, and its saved outputs must equal ONNX
Runtime's and, where ONNX Runtime matches them, the suite's expected outputs. The ~1,800 cases go
through the run pipeline in-process (a process each would take minutes); a few, through the CLI.
"""

import ctypes
import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper
from onnx.backend.test.loader import load_model_tests
from onnx.backend.test.runner import Runner

from infertool.inputs.feeds import InputOptions
from infertool.pipelines.run import RunRequest, run
from infertool.reporting import SilentReporter

from conftest import cli

pytestmark = pytest.mark.slow
SERIALIZE = {"sequence_type": numpy_helper.from_list, "optional_type": numpy_helper.from_optional, "map_type": numpy_helper.from_dict}
PARSE = {"sequence_type": (onnx.SequenceProto, numpy_helper.to_list), "optional_type": (onnx.OptionalProto, numpy_helper.to_optional)}
NUMPY_TYPES = set("biufcOUS")
# as real processes too: a float8 output, bfloat16 in and out, int4 in, strings, sequences, optionals, no inputs
SUBPROCESS_CASES = ("test_cast_FLOAT_to_FLOAT8E4M3FN", "test_cast_BFLOAT16_to_FLOAT", "test_string_concat",
                    "test_identity_opt", "test_constant")


def _proto(value, value_info):
    serialize = SERIALIZE.get(value_info.type.WhichOneof("value"))
    if serialize is not None:
        return serialize(value, value_info.name)
    return value if isinstance(value, TensorProto) else numpy_helper.from_array(value, value_info.name)


def _write_case(case, folder):
    data = folder / "test_data_set_0"
    data.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(case.model.SerializeToString())
    inputs, outputs = case.data_sets[0]
    for prefix, values, infos in (("input", inputs, case.model.graph.input), ("output", outputs, case.model.graph.output)):
        for index, (value, info) in enumerate(zip(values, infos)):
            (data / f"{prefix}_{index}.pb").write_bytes(_proto(value, info).SerializeToString())


def _read(path, value_info):
    kind, read = PARSE.get(value_info.type.WhichOneof("value"), (TensorProto, numpy_helper.to_array))
    proto = kind()
    proto.ParseFromString(path.read_bytes())
    return read(proto)


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    root = tmp_path_factory.mktemp("onnx-node")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = load_model_tests(kind="node")
    for case in cases:
        _write_case(case, root / case.name)
    return root, {c.name: c for c in cases}


# ---------------------------------------------------------------- ONNX Runtime on its own


def _ort_value(value, elem_type):
    """numpy-lacking types (bfloat16, float8, int4...) go in as OrtValues holding ONNX's raw bytes."""
    import onnxruntime as ort

    if not isinstance(value, np.ndarray):
        return value
    if value.dtype.kind in NUMPY_TYPES and value.dtype.name != "float8_e5m2":
        return ort.OrtValue.ortvalue_from_numpy(value)
    raw = np.frombuffer(numpy_helper.from_array(value).raw_data, np.uint8)
    holder = np.zeros(value.shape, f"u{value.dtype.itemsize}")
    holder.reshape(-1).view(np.uint8)[: raw.size] = raw
    return ort.OrtValue.ortvalue_from_numpy_with_onnx_type(holder, elem_type)


def _from_ort_value(value):
    if not value.has_value():
        return None
    raw = ctypes.string_at(value.data_ptr(), value.tensor_size_in_bytes())
    return numpy_helper.to_array(TensorProto(dims=value.shape(), data_type=value.element_type(), raw_data=raw))


def _onnxruntime(folder, model):
    """ONNX Runtime's own outputs, or an exception where it cannot run the case."""
    import onnxruntime as ort

    ort.set_default_logger_severity(4)
    inputs = {i.name: _read(folder / "test_data_set_0" / f"input_{k}.pb", i) for k, i in enumerate(model.graph.input)}
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    exotic = lambda info: info.type.tensor_type.elem_type >= TensorProto.BFLOAT16  # noqa: E731
    if any(exotic(o) for o in model.graph.output):
        values = {i.name: _ort_value(inputs[i.name], i.type.tensor_type.elem_type) for i in model.graph.input}
        return [_from_ort_value(v) for v in session.run_with_ort_values(None, values)]
    feeds = {i.name: _ort_value(inputs[i.name], i.type.tensor_type.elem_type) if exotic(i) else inputs[i.name] for i in model.graph.input}
    return session.run(None, feeds)


def _differs(expected, got, rtol, atol):
    """How `got` differs from `expected` (None when it does not), by the suite's own rule for tensors."""
    if isinstance(expected, list) or isinstance(got, list):
        if not (isinstance(expected, list) and isinstance(got, list) and len(expected) == len(got)):
            return f"expected a sequence of {len(expected) if isinstance(expected, list) else '-'}, got {type(got).__name__}"
        return next((d for e, g in zip(expected, got) if (d := _differs(e, g, rtol, atol)) is not None), None)
    if expected is None or got is None:
        return None if expected is None and got is None else f"expected {type(expected).__name__}, got {type(got).__name__}"
    try:
        Runner.assert_similar_outputs([expected], [got], rtol=rtol, atol=atol)
    except AssertionError as exc:
        return " ".join(str(exc).split())[:300]
    return None


# ---------------------------------------------------------------- infertool


def _infertool_run(folder, out):
    """`infertool run MODEL --inputs test_data_set_0 -o OUT`, through the pipeline the command calls."""
    request = RunRequest(folder / "model.onnx", inputs=InputOptions(path=folder / "test_data_set_0"), output=out, isolate=False)  # the pipeline on every ONNX type; crash isolation has its own tests
    try:
        run(request, SilentReporter())
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def test_node_cases_run_through_infertool_as_onnxruntime_runs_them(suite, tmp_path):
    root, cases = suite
    ran, failures = 0, []
    for name, case in cases.items():
        folder = root / name
        try:
            reference = _onnxruntime(folder, case.model)
        except Exception:
            continue  # ONNX Runtime itself cannot run this case
        ran += 1
        error = _infertool_run(folder, tmp_path / name)
        if error is not None:
            failures.append(f"{name}: {error}")
            continue
        got = [_read(tmp_path / name / f"output_{k}.pb", o) for k, o in enumerate(case.model.graph.output)]
        expected = [_read(folder / "test_data_set_0" / f"output_{k}.pb", o) for k, o in enumerate(case.model.graph.output)]
        problem = _differs(reference, got, 0, 0)
        if problem is None and _differs(expected, reference, case.rtol, case.atol) is None:
            problem = _differs(expected, got, case.rtol, case.atol)
        if problem is not None:
            failures.append(f"{name}: {problem}")
    assert not failures, f"{len(failures)} of {ran} cases:\n" + "\n".join(failures)
    assert ran > 1600, f"ONNX Runtime ran only {ran} of {len(cases)} node cases"


@pytest.mark.parametrize("name", SUBPROCESS_CASES)
def test_node_cases_as_real_processes(suite, tmp_path, name):
    root, cases = suite
    folder, model = root / name, cases[name].model
    result = cli("run", folder / "model.onnx", "--inputs", folder / "test_data_set_0", "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    got = [_read(tmp_path / "out" / f"output_{k}.pb", o) for k, o in enumerate(model.graph.output)]
    assert _differs(_onnxruntime(folder, model), got, 0, 0) is None
