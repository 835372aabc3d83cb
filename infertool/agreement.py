"""Output agreement between a reference and a candidate: the numbers every command reports."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from infertool.dtypes import widened

# per precision: (atol, rtol, min_cosine); an output passes with allclose(atol, rtol) or cosine >= min_cosine
PRECISION_TOLERANCES = {
    "fp32": (1e-4, 1e-3, 0.99999),
    "fp64": (1e-6, 1e-5, None),
    "fp16": (1e-2, 1e-2, 0.999),
    "bf16": (5e-2, 5e-2, 0.995),
    "int8": (0.0, 0.0, 0.99),
    "fp8": (0.0, 0.0, 0.98),
}


def tolerance(precision: str) -> tuple[float, float, float | None]:
    return PRECISION_TOLERANCES.get(precision, PRECISION_TOLERANCES["fp32"])


@dataclass(frozen=True)
class Agreement:
    """How close `got` is to `ref`, for one output.

    `max_rel` is max |got - ref| / |ref| over elements with |ref| > `rel_floor`, so values near
    zero do not turn rounding noise into huge ratios. `passed` uses numpy's allclose rule:
    |got - ref| <= atol + rtol * |ref| everywhere (or cosine >= `min_cosine` where one is given, for
    reduced precision), with matching shapes and no new NaN/Inf. Text and integers must be equal;
    a sequence is judged over all its tensors, an absent optional only against an absent one.
    """

    name: str
    shape_match: bool
    max_abs: float
    mean_abs: float
    max_rel: float
    cosine: float
    atol: float
    rtol: float
    passed: bool
    top1: float | None = None  # share of rows whose arg-max agrees (classifier-shaped outputs)
    top5: float | None = None  # share of rows whose reference top-1 is in the candidate's top 5
    min_cosine: float | None = None  # the cosine that passes regardless of atol/rtol, where one applied

    def to_dict(self) -> dict:
        return asdict(self)


def _topk_agreement(ref: np.ndarray, got: np.ndarray) -> tuple[float | None, float | None]:
    """Where the reference's top class ranks among the candidate's. Both rank tied scores by class
    index (argmax's rule), so a tie never drops the top-5 agreement below the top-1."""
    if ref.ndim != 2 or ref.shape[1] < 2:
        return None, None
    ref_top1 = ref.argmax(axis=1)
    ranked = np.argsort(-got, axis=1, kind="stable")[:, :5]
    top1 = float(np.mean(ranked[:, 0] == ref_top1))
    top5 = float(np.mean(np.any(ranked == ref_top1[:, None], axis=1))) if ref.shape[1] >= 5 else None
    return top1, top5


def _flat(value: Any) -> tuple[np.ndarray, tuple]:
    """A value as one array and the layout that must match: a sequence's tensors joined."""
    if isinstance(value, list):
        arrays = [np.asarray(v) for v in value]
        joined = np.concatenate([a.ravel() for a in arrays]) if arrays and len({a.dtype for a in arrays}) == 1 else np.zeros(0)
        return joined, ("sequence", *(a.shape for a in arrays))
    array = np.asarray(value)
    if array.dtype.kind == "c":  # real and imaginary parts side by side
        array = np.stack([array.real, array.imag], axis=-1)
        return array, array.shape
    return widened(array), array.shape


def compare(
    name: str, ref: Any, got: Any, atol: float, rtol: float,
    min_cosine: float | None = None, rel_floor: float = 1e-6,
) -> Agreement:
    """Agreement of one output; with `min_cosine`, a cosine at or above it also passes."""
    nan = float("nan")
    if ref is None or got is None:
        same = ref is None and got is None
        return Agreement(name, same, 0.0 if same else nan, 0.0 if same else nan, 0.0 if same else nan, 1.0 if same else nan, atol, rtol, same, min_cosine=min_cosine)
    (ref, ref_layout), (got, got_layout) = _flat(ref), _flat(got)
    if ref_layout != got_layout:
        return Agreement(name, False, nan, nan, nan, nan, atol, rtol, False, min_cosine=min_cosine)
    if ref.dtype.kind not in "f":
        same = bool(np.array_equal(ref, got))
        numeric = ref.dtype.kind in "biu" and got.dtype.kind in "biu"
        diff = float(np.max(np.abs(ref.astype(np.int64) - got.astype(np.int64)))) if numeric and ref.size else 0.0 if same else float("inf")
        return Agreement(name, True, diff, diff, 0.0 if same else float("inf"), 1.0 if same else 0.0, atol, rtol, same, min_cosine=min_cosine)
    ref64 = ref.astype(np.float64)
    got64 = got.astype(np.float64)
    finite = np.isfinite(ref64)
    nan_mismatch = bool(np.any(np.isfinite(got64) != finite))
    err = np.abs(got64 - ref64)[finite] if ref.size else np.zeros(0)
    max_abs = float(err.max()) if err.size else 0.0
    mean_abs = float(err.mean()) if err.size else 0.0
    magnitude = np.abs(ref64[finite])
    big = magnitude > rel_floor
    max_rel = float((err[big] / magnitude[big]).max()) if np.any(big) else 0.0
    r, g = ref64[finite].ravel(), np.nan_to_num(got64[finite]).ravel()
    norms = float(np.linalg.norm(r) * np.linalg.norm(g))
    cosine = float(np.dot(r, g) / norms) if norms > 0 else float(np.array_equal(r, g))
    close = bool(np.all(err <= atol + rtol * magnitude))
    passed = not nan_mismatch and (close or (min_cosine is not None and cosine >= min_cosine))
    top1, top5 = _topk_agreement(ref64, got64)
    return Agreement(name, True, max_abs, mean_abs, max_rel, cosine, atol, rtol, passed, top1, top5, min_cosine)
