import numpy as np
import pytest

from infertool.agreement import Rule, compare
from infertool.cli.parse import dtype as parse_dtype
from infertool.cli.parse import int_range as parse_int_range
from infertool.cli.parse import named_shape as parse_named_shape
from infertool.cli.parse import named_shapes as parse_named_shapes
from infertool.errors import InfertoolError
from infertool.inputs.generated import IntRanges, generated_feeds
from infertool.tensors import TensorSpec, resolve_shapes


def test_parse_named_shape():
    assert parse_named_shape("x:1x3x224x224") == ("x", (1, 3, 224, 224))
    assert parse_named_shape("1,3,8") == (None, (1, 3, 8))
    assert parse_named_shape("serving:0:2x4") == ("serving:0", (2, 4))


@pytest.mark.parametrize("text", ["x:1x0x3", "x:1xax3", ":1x2", "x:1x-2"])
def test_malformed_shapes_are_rejected(text):
    with pytest.raises(InfertoolError, match="malformed|empty"):
        parse_named_shape(text)


def test_several_shapes_must_be_named():
    with pytest.raises(InfertoolError, match="name every shape"):
        parse_named_shapes(["1x2", "b:1x2"])


def test_dtype_aliases():
    assert parse_dtype("fp16") == "float16" and parse_dtype("INT64") == "int64"
    with pytest.raises(InfertoolError, match="unknown dtype"):
        parse_dtype("float12")


SPECS = [TensorSpec("ids", "int64", ("batch", "seq")), TensorSpec("mask", "float32", ("batch", "seq")), TensorSpec("img", "float32", ("batch", 3, 8, 8))]


def test_resolve_shapes_shares_symbols_and_sets_batch():
    shapes = resolve_shapes(SPECS, {"ids": (2, 7)}, batch=4)
    assert shapes == {"ids": (4, 7), "mask": (4, 7), "img": (4, 3, 8, 8)}


def test_resolve_shapes_errors_name_the_problem():
    with pytest.raises(InfertoolError, match="dynamic dimension 'seq'"):
        resolve_shapes(SPECS, {}, batch=1)
    with pytest.raises(InfertoolError, match="fixed size 3 at axis 1"):
        resolve_shapes(SPECS, {"ids": (1, 2), "img": (1, 4, 8, 8)})
    with pytest.raises(InfertoolError) as info:
        resolve_shapes(SPECS, {"idz": (1, 2)})
    assert "ids, mask, img" in info.value.hint


def test_generated_feeds_are_seeded_and_typed():
    shapes, dtypes = {"ids": (2, 5), "x": (2, 3)}, {"ids": "int64", "x": "float16"}
    a = generated_feeds(shapes, dtypes, seed=1, int_range=IntRanges((3, 9)))
    b = generated_feeds(shapes, dtypes, seed=1, int_range=IntRanges((3, 9)))
    assert a["ids"].dtype == np.int64 and a["x"].dtype == np.float16
    assert a["ids"].min() >= 3 and a["ids"].max() < 9
    np.testing.assert_array_equal(a["x"], b["x"])
    with pytest.raises(InfertoolError):
        parse_int_range("9:3")


def test_compare_reports_errors_and_topk():
    ref = np.eye(4, 6, dtype=np.float32) * 10
    rule = lambda atol, rtol: Rule("fp32", atol, rtol, None, kind="values")  # noqa: E731
    same = compare("y", ref, ref.copy(), rule(1e-6, 0), samples=4)
    assert same.passed and same.max_abs == 0 and same.top1 == 1.0 and same.top5 == 1.0
    noisy = ref + 0.01
    result = compare("y", ref, noisy, rule(1e-4, 0), samples=4)  # 0.01 over atol 1e-4 x the largest |value| 10
    assert not result.passed and result.max_abs == pytest.approx(0.01, rel=1e-4) and result.failing == (0, 1, 2, 3)
    assert compare("y", ref, noisy, rule(1e-2, 0), samples=4).passed
    assert compare("y", ref, ref[:2], rule(1, 1)).shape_match is False
    assert not compare("y", ref, np.full_like(ref, np.nan), rule(1e9, 1e9)).passed
