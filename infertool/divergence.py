"""How far one tensor of a candidate run strays from the reference's, sample by sample: the
numbers `debug layers` reports for every intermediate tensor."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from infertool.agreement import tolerance

FP16_MAX = 65504.0
FP16_MIN_NORMAL = 2.0**-14
# the relative error one rounding to the precision leaves: the floor error growth is measured from
ROUNDOFF = {"fp64": 2.0**-53, "fp32": 2.0**-24, "fp16": 2.0**-11, "bf16": 2.0**-8, "int8": 1 / 254, "fp8": 2.0**-4}
GROWTH = 10.0  # a node whose output error is this many times its inputs' is flagged
UNDERFLOW_SHARE = 0.01  # flagged when this share of the nonzero reference values is below fp16's normal range
REL_FLOOR = 1e-6  # |ref| below this is left out of the relative error


def element_tolerance(precision: str, ref_absmax: float) -> tuple[float, float]:
    """(atol, rtol) an element may stray: the rule's (agreement.Rule), its atol scaled by the tensor's
    largest |value|. Quantized precisions are judged by cosine alone, so an element is over their
    tolerance past one int8 step of the tensor's range, or two fp8 steps."""
    if precision == "int8":
        return ref_absmax / 127, 0.0
    if precision == "fp8":
        return ref_absmax * 2.0**-9, 2.0**-3
    atol, rtol, _ = tolerance(precision)
    return atol * ref_absmax, rtol


def element_tolerance_text(precision: str) -> str:
    if precision == "int8":
        return "more than one int8 step of the tensor's range"
    if precision == "fp8":
        return "more than two fp8 steps"
    atol, rtol, _ = tolerance(precision)
    return f"past {atol:g} x max|ref| + {rtol:g} x |ref|"


@dataclass
class Divergence:
    """Accumulated over runs (samples): worst cosine and relative error, largest errors, how many
    elements stray past the tolerance, and the reference's fp16 range."""

    precision: str
    runs: int = 0
    elements: int = 0
    over: int = 0  # elements past the tolerance, non-finite ones included
    max_abs: float = 0.0
    max_rel: float = 0.0
    cosine: float = 1.0  # the worst run's (NaN: non-finite candidate values)
    error: float = 0.0  # the largest ||candidate - reference|| / ||reference|| of a run
    worst_run: int | None = None  # the run with the worst cosine
    ref_absmax: float = 0.0
    overflow: int = 0  # reference elements beyond fp16's range
    underflow: int = 0  # nonzero reference elements below fp16's normal range
    nonzero: int = 0
    nonfinite: int = 0  # candidate NaN / Inf where the reference is finite
    shape_mismatch: bool = False

    def add(self, ref: np.ndarray, got: np.ndarray, run: int) -> None:
        self.runs += 1
        if ref.shape != got.shape:
            self.shape_mismatch = True
            return
        r = np.asarray(ref, dtype=np.float64).ravel()
        g = np.asarray(got, dtype=np.float64).ravel()
        finite = np.isfinite(r)
        self._range(np.abs(r[finite]))
        broken = finite & ~np.isfinite(g)
        r, g = r[finite & ~broken], g[finite & ~broken]
        magnitude = np.abs(r)
        err = np.abs(g - r)
        atol, rtol = element_tolerance(self.precision, float(magnitude.max()) if r.size else 0.0)
        self.elements += int(finite.sum())
        self.over += int(np.count_nonzero(err > atol + rtol * magnitude) + broken.sum())
        self.nonfinite += int(broken.sum())
        self.max_abs = max(self.max_abs, float(err.max()) if err.size else 0.0)
        big = magnitude > REL_FLOOR
        self.max_rel = max(self.max_rel, float((err[big] / magnitude[big]).max()) if big.any() else 0.0)
        cosine, error = _cosine_and_error(r, g) if not broken.any() else (math.nan, math.inf)
        if self.worst_run is None or _worse(cosine, self.cosine):
            self.cosine, self.worst_run = cosine, run
        self.error = max(self.error, error)

    def _range(self, magnitude: np.ndarray) -> None:
        """The reference's values against fp16's range."""
        self.ref_absmax = max(self.ref_absmax, float(magnitude.max()) if magnitude.size else 0.0)
        self.overflow += int(np.count_nonzero(magnitude > FP16_MAX))
        self.underflow += int(np.count_nonzero((magnitude > 0) & (magnitude < FP16_MIN_NORMAL)))
        self.nonzero += int(np.count_nonzero(magnitude))

    @property
    def over_share(self) -> float:
        return self.over / self.elements if self.elements else 0.0

    @property
    def underflows(self) -> bool:
        return self.nonzero > 0 and self.underflow / self.nonzero >= UNDERFLOW_SHARE

    def diverged(self, min_cosine: float | None) -> bool:
        """Past the precision's tolerance: non-finite values, another shape, or elements past the
        tolerance with a cosine under the precision's floor."""
        if self.nonfinite or self.shape_mismatch or math.isnan(self.cosine):
            return True
        return self.over > 0 and (min_cosine is None or self.cosine < min_cosine)

    def to_dict(self) -> dict:
        return {
            "samples": self.runs, "max_abs": self.max_abs, "max_rel": self.max_rel, "cosine": self.cosine, "error": self.error,
            "over_tolerance": self.over_share, "worst_sample": self.worst_run, "reference_absmax": self.ref_absmax,
            "fp16_overflow": self.overflow, "fp16_underflow": self.underflow, "nonfinite": self.nonfinite, "shape_mismatch": self.shape_mismatch,
        }


def _cosine_and_error(r: np.ndarray, g: np.ndarray) -> tuple[float, float]:
    # sums rather than BLAS dot products: on a busy machine BLAS threads spin for small vectors
    norm_r, norm_g = math.sqrt(float((r * r).sum())), math.sqrt(float((g * g).sum()))
    if norm_r == 0 or norm_g == 0:
        same = norm_r == norm_g
        return (1.0 if same else 0.0), (0.0 if same else math.inf)
    gap = g - r
    return float((r * g).sum()) / (norm_r * norm_g), math.sqrt(float((gap * gap).sum())) / norm_r


def _worse(cosine: float, than: float) -> bool:
    """NaN (non-finite candidate values) is the worst cosine."""
    if math.isnan(cosine) or math.isnan(than):
        return math.isnan(cosine) and not math.isnan(than)
    return cosine < than
