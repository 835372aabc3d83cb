"""Output agreement between a reference and a candidate, judged sample by sample: the one rule behind
every verdict on outputs (quantize's and build-engine's gates, bench's agreement, debug precision's
search, tune's check, export validation). Report reads the verdicts these recorded; nothing else
judges outputs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from infertool.dtypes import widened

# per precision: (atol, rtol, min_cosine). atol is a share of the sample's largest |reference| value.
PRECISION_TOLERANCES = {
    "fp32": (1e-4, 1e-3, 0.99999),
    "fp64": (1e-6, 1e-5, None),
    "fp16": (1e-2, 1e-2, 0.999),
    "bf16": (5e-2, 5e-2, 0.995),
    "int8": (0.0, 0.0, 0.99),
    "fp8": (0.0, 0.0, 0.98),
}
CLASS_AGREEMENT = 0.99  # share of samples whose arg-max must agree, for class-score outputs
KINDS = ("auto", "values", "classes", "ctc")
PROBABILITY_SUM = 1e-3  # how far from 1 a row of probabilities may sum


def tolerance(precision: str) -> tuple[float, float, float | None]:
    return PRECISION_TOLERANCES.get(precision, PRECISION_TOLERANCES["fp32"])


@dataclass(frozen=True)
class Rule:
    """How a candidate's outputs are judged, each sample (the leading axis) apart.

    values: every element within atol x the sample's largest |reference| + rtol x |reference| (so
      the tolerance follows the output's magnitude), or the sample's cosine >= min_cosine; every
      sample must pass (or `min_share` of them).
    classes: the arg-max over the last axis agrees at every position of the sample (a classifier's
      top-1, a CTC head's symbol at each time step), or the values pass as above (a flip between
      scores the tolerance cannot tell apart); `min_share` of the samples must pass.
    ctc: as classes, but what must agree is the greedy CTC decoding of the sample (the arg-max per
      time step, repeats collapsed, class 0 the blank dropped): a recogniser's text, not its timing.
    auto: classes for outputs of probabilities (rows of >= 2 non-negative values summing to 1),
      values for the rest.
    Whatever the kind, a sample fails where the candidate has NaN/Inf and the reference does not,
    or is all zeros where the reference is not; text and integers must be equal.
    """

    precision: str
    atol: float
    rtol: float
    min_cosine: float | None
    kind: str = "auto"
    min_share: float | None = None  # None: every sample for values, CLASS_AGREEMENT for classes

    @classmethod
    def of(
        cls, precision: str, atol: float | None = None, rtol: float | None = None, min_cosine: float | None = None,
        kind: str = "auto", min_share: float | None = None,
    ) -> Rule:
        """The precision's tolerance, with any value the user gave in its place."""
        base_atol, base_rtol, base_cosine = tolerance(precision)
        return cls(
            precision, base_atol if atol is None else atol, base_rtol if rtol is None else rtol,
            base_cosine if min_cosine is None else min_cosine, kind, min_share,
        )

    def share(self, kind: str) -> float:
        """The share of samples that must pass an output of this kind."""
        if self.min_share is not None:
            return self.min_share
        return CLASS_AGREEMENT if kind in ("classes", "ctc") else 1.0

    def describe(self, kind: str) -> str:
        """The rule in words, as tables print it."""
        if kind == "exact":
            return "equal"
        share = self.share(kind)
        of = "every sample" if share >= 1 else f"{share:.0%} of samples"
        if kind in ("classes", "ctc"):
            agrees = "decoded CTC text agrees" if kind == "ctc" else "arg-max agrees"
            return f"{agrees} (or {self.describe('values').rsplit(' on ', 1)[0]}) on {of}"
        parts = [f"|err| <= {self.atol:g}*max|ref| + {self.rtol:g}*|ref|"] if self.atol or self.rtol else []
        if self.min_cosine is not None:
            parts.append(f"cosine >= {self.min_cosine:g}")
        return f"{' or '.join(parts) or 'equal'} on {of}"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Agreement:
    """How close `got` is to `ref` for one output, sample by sample.

    `cosine` is the worst sample's; `max_abs` / `max_rel` the largest errors of any element
    (`max_rel` over elements with |ref| > `rel_floor`, so values near zero do not turn rounding
    noise into huge ratios). `failing` lists the samples that fail the rule, `worst` the sample
    with the lowest cosine; `passed` applies the rule's share of samples.
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
    top1: float | None = None  # share of samples whose arg-max agrees (class-score outputs)
    top5: float | None = None  # share of rows whose reference top-1 is in the candidate's top 5
    min_cosine: float | None = None  # the cosine that passes regardless of atol/rtol, where one applied
    kind: str = "values"  # values | classes | exact (text, integers, sequences)
    samples: int = 1
    failing: tuple[int, ...] = ()
    worst: int | None = None  # the sample with the lowest cosine
    nonfinite: int = 0  # candidate NaN / Inf elements where the reference is finite
    rule: str = ""

    def to_dict(self) -> dict:
        return {**asdict(self), "failing": list(self.failing), "failing_samples": len(self.failing)}

    @classmethod
    def from_dict(cls, data: Mapping) -> Agreement:
        """An agreement as a result file recorded it (files from before per-sample judging lack the new fields)."""
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**{**known, "failing": tuple(known.get("failing", ()))})


@dataclass(frozen=True)
class Judgement:
    """Every output of one candidate run against the reference, under one rule."""

    rule: Rule
    samples: int
    outputs: tuple[Agreement, ...]

    @property
    def passed(self) -> bool:
        return all(a.passed for a in self.outputs)

    @property
    def failing(self) -> tuple[int, ...]:
        """Samples failing on any output."""
        return tuple(sorted({s for a in self.outputs for s in a.failing}))

    @property
    def min_cosine(self) -> float | None:
        cosines = [a.cosine for a in self.outputs if a.kind != "exact"]
        if not cosines:
            return None
        return float("nan") if any(c != c for c in cosines) else min(cosines)

    @property
    def top1(self) -> float | None:
        return next((a.top1 for a in self.outputs if a.top1 is not None), None)

    def summary(self) -> str:
        """'ok' or 'k of N samples fail', naming the worst output and sample."""
        failing = self.failing
        if not failing:
            return f"ok on all {self.samples} samples" if self.samples > 1 else "ok"
        worst = min(self.outputs, key=lambda a: (not a.failing, a.cosine if a.cosine == a.cosine else -2.0))
        where = f"; worst: {worst.name}" + (f" sample {worst.worst}" if worst.worst is not None and self.samples > 1 else "")
        return f"{len(failing)} of {self.samples} samples fail{where}"

    def to_dict(self) -> dict:
        return {
            "rule": self.rule.to_dict(), "samples": self.samples, "passed": self.passed, "failing": list(self.failing),
            "min_cosine": self.min_cosine, "outputs": [a.to_dict() for a in self.outputs],
        }


def judge(reference: Mapping[str, Any], candidate: Mapping[str, Any], rule: Rule, samples: int | None = None) -> Judgement:
    """Each output of `candidate` against `reference` under `rule`; outputs whose leading axis has
    `samples` entries are judged sample by sample, the others as one sample."""
    found = tuple(compare(name, reference[name], candidate.get(name), rule, samples) for name in reference)
    count = max((a.samples for a in found), default=1)
    return Judgement(rule, count, found)


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


def output_kind(ref: np.ndarray, kind: str) -> str:
    """values, classes or ctc: what `kind` means for this reference output."""
    classes_shaped = ref.ndim >= 2 and ref.shape[-1] >= 2
    if kind != "auto" or not classes_shaped or not ref.size:
        return kind if kind in ("classes", "ctc") and classes_shaped else "values"
    rows = ref.reshape(-1, ref.shape[-1])
    probabilities = bool(np.all(rows >= 0) and np.all(np.abs(rows.sum(axis=1) - 1.0) <= PROBABILITY_SUM))
    return "classes" if probabilities else "values"


def _exact(name: str, ref: np.ndarray, got: np.ndarray, rule: Rule) -> Agreement:
    same = bool(np.array_equal(ref, got))
    numeric = ref.dtype.kind in "biu" and got.dtype.kind in "biu"
    diff = float(np.max(np.abs(ref.astype(np.int64) - got.astype(np.int64)))) if numeric and ref.size else 0.0 if same else float("inf")
    return Agreement(
        name, True, diff, diff, 0.0 if same else float("inf"), 1.0 if same else 0.0, rule.atol, rule.rtol, same,
        min_cosine=rule.min_cosine, kind="exact", failing=() if same else (0,), rule=rule.describe("exact"),
    )


def _missing(name: str, ref: Any, got: Any, rule: Rule, shape_match: bool = False) -> Agreement:
    """An absent output (an empty optional, or one the candidate lacks), or one of another layout."""
    same = ref is None and got is None
    nan = float("nan")
    value = 0.0 if same else nan
    return Agreement(
        name, same or shape_match, value, value, value, 1.0 if same else nan, rule.atol, rule.rtol, same,
        min_cosine=rule.min_cosine, kind="exact", failing=() if same else (0,), rule=rule.describe("exact"),
    )


def _per_sample(ref: np.ndarray, samples: int | None) -> int:
    return samples if samples and ref.ndim and ref.shape[0] == samples else 1


def compare(name: str, ref: Any, got: Any, rule: Rule, samples: int | None = None, rel_floor: float = 1e-6) -> Agreement:
    """Agreement of one output under `rule`, each of its `samples` (leading axis) judged apart."""
    if ref is None or got is None:
        return _missing(name, ref, got, rule)
    (ref, ref_layout), (got, got_layout) = _flat(ref), _flat(got)
    if ref_layout != got_layout:
        return _missing(name, ref, got, rule)
    if ref.dtype.kind != "f":
        return _exact(name, ref, got, rule)
    sequence = bool(ref_layout) and ref_layout[0] == "sequence"  # judged whole, as one sample
    count = 1 if sequence or not ref.size else _per_sample(ref, samples)
    kind = "values" if sequence else output_kind(ref, rule.kind)
    ref64, got64 = ref.astype(np.float64).reshape(count, -1), got.astype(np.float64).reshape(count, -1)
    errors = _errors(ref64, got64, rule, rel_floor)
    within = errors["close"] | (errors["cosine"] >= rule.min_cosine if rule.min_cosine is not None else False)
    if kind in ("classes", "ctc"):  # the same decisions, or values within the tolerance (a flip on a near-tie)
        agrees = (_ctc_agrees if kind == "ctc" else _argmax_agrees)(ref.astype(np.float64), got.astype(np.float64), count)
        fails = errors["broken"] | ~(agrees | within)
        top1, top5 = float(np.mean(agrees & ~errors["broken"])), _topk_agreement(ref, got)[1] if ref.ndim == 2 else None
    else:
        fails = errors["broken"] | ~within
        top1, top5 = _topk_agreement(ref, got)
    failing = tuple(int(i) for i in np.flatnonzero(fails))
    passed = (count - len(failing)) >= rule.share(kind) * count - 1e-9
    cosines = errors["cosine"]
    return Agreement(
        name, True, errors["max_abs"], errors["mean_abs"], errors["max_rel"], float(cosines.min()) if count else 1.0,
        rule.atol, rule.rtol, passed, top1, top5, rule.min_cosine, kind, count, failing,
        int(cosines.argmin()) if count else None, errors["nonfinite"], rule.describe(kind),
    )


def _argmax_agrees(ref: np.ndarray, got: np.ndarray, count: int) -> np.ndarray:
    """Per sample: the arg-max over the last axis is the same at every position."""
    classes = ref.shape[-1]
    same = ref.reshape(-1, classes).argmax(axis=1) == np.nan_to_num(got, nan=-np.inf).reshape(-1, classes).argmax(axis=1)
    return same.reshape(count, -1).all(axis=1)


def _ctc_agrees(ref: np.ndarray, got: np.ndarray, count: int) -> np.ndarray:
    """Per sample: the same greedy CTC decoding (best class per step, repeats collapsed, blanks (0) dropped)."""
    classes = ref.shape[-1]
    best = [a.reshape(count, -1, classes).argmax(axis=2) for a in (ref, np.nan_to_num(got, nan=-np.inf))]
    return np.array([np.array_equal(_ctc_text(r), _ctc_text(g)) for r, g in zip(*best)], bool)


def _ctc_text(best: np.ndarray) -> np.ndarray:
    return best[(best != 0) & np.concatenate([[True], best[1:] != best[:-1]])]


def _allowed_error(magnitude: np.ndarray, scale: np.ndarray | float, rule: Rule) -> np.ndarray:
    """The values rule's element tolerance: atol x the sample's largest |reference| + rtol x |reference|."""
    return rule.atol * scale + rule.rtol * magnitude


def _errors(ref: np.ndarray, got: np.ndarray, rule: Rule, rel_floor: float) -> dict:
    """Per-sample cosine, closeness and broken (NaN/Inf or all-zero) flags of (samples, elements)
    arrays, and the largest element errors."""
    finite = np.isfinite(ref)
    mismatch = np.any(np.isfinite(got) != finite, axis=1)
    nonfinite = int(np.sum(~np.isfinite(got) & finite))
    r = np.where(finite, ref, 0.0)
    g = np.where(finite, np.nan_to_num(got, nan=0.0, posinf=0.0, neginf=0.0), 0.0)
    err = np.abs(g - r)
    magnitude = np.abs(r)
    scale = magnitude.max(axis=1, keepdims=True) if r.shape[1] else np.zeros((r.shape[0], 1))
    close = np.all(err <= _allowed_error(magnitude, scale, rule), axis=1)
    zero = ~np.any(g != 0, axis=1) & np.any(r != 0, axis=1)
    norms = np.linalg.norm(r, axis=1) * np.linalg.norm(g, axis=1)
    both_zero = ~np.any(r != 0, axis=1) & ~np.any(g != 0, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cosine = np.where(norms > 0, np.sum(r * g, axis=1) / np.where(norms > 0, norms, 1.0), np.where(both_zero, 1.0, 0.0))
    cosine = np.where(mismatch, np.nan, np.clip(cosine, -1.0, 1.0))
    big = magnitude > rel_floor
    return {
        "close": close, "cosine": cosine, "broken": mismatch | zero, "nonfinite": nonfinite,
        "max_abs": float(err.max()) if err.size else 0.0, "mean_abs": float(err.mean()) if err.size else 0.0,
        "max_rel": float((err[big] / magnitude[big]).max()) if np.any(big) else 0.0,
    }



PAIRING_BUDGET = 4_000_000  # elements compared when pairing rows: (rows out of place)² × elements of a row, all outputs


def paired_rows(ref: list[np.ndarray], got: list[np.ndarray], rule: Rule) -> np.ndarray | None:
    """An order of `got`'s rows (axis 0) under which every output of a group matches `ref` (rows of
    top-k / NMS outputs tied within rounding come out in either order): `got[k][order]` against
    `ref[k]`. Rows that already match stay in place; the others are paired greedily, each with the
    closest row still free that matches in every output (within `rule`'s tolerance, integers equal)
    and whose place it takes holds a reference row tied with its own in some float output (the score
    the rows were sorted by): a reordering of rows that are not tied is a disagreement, not rounding.
    None where some row has no partner, the layouts differ, or pairing would cost more than the budget."""
    rows = ref[0].shape[0] if ref and ref[0].ndim else 0
    if not all(r.ndim and r.shape == g.shape and r.shape[0] == rows for r, g in zip(ref, got)):
        return None
    widths = [int(np.prod(r.shape[1:])) for r in ref]  # never -1: a reshape of no rows could not infer it
    pairs = [_row_pairs(r.reshape(rows, w), g.reshape(rows, w), rule) for r, g, w in zip(ref, got, widths)]
    in_place = np.all([p(np.arange(rows), np.arange(rows))[0] for p in pairs], axis=0)
    loose = np.flatnonzero(~in_place)
    if loose.size ** 2 * sum(widths) > PAIRING_BUDGET:
        return None
    matches, distance = np.ones((loose.size, loose.size), bool), np.zeros((loose.size, loose.size))
    tied = np.zeros((loose.size, loose.size), bool)
    for pair, r, w in zip(pairs, ref, widths):
        close, error = pair(loose[:, None], loose[None, :])
        matches &= close
        distance = np.maximum(distance, error)
        if r.dtype.kind == "f":
            tied |= _row_pairs(r.reshape(rows, w), r.reshape(rows, w), rule)(loose[:, None], loose[None, :])[0]
    matches &= tied
    order, free = np.arange(rows), np.ones(loose.size, bool)
    for i, row in enumerate(loose):
        candidates = np.flatnonzero(matches[i] & free)
        if not candidates.size:
            return None
        best = candidates[np.argmin(distance[i, candidates])]
        free[best], order[row] = False, loose[best]
    return order


def _row_pairs(ref: np.ndarray, got: np.ndarray, rule: Rule) -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """A function of row indices (i, j): whether ref row i matches got row j element by element and how far
    apart they are, in units of the tolerance (the output's scale as `compare` takes it whole)."""
    exact = ref.dtype.kind != "f" or got.dtype.kind != "f"
    ref64, got64 = (ref, got) if exact else (ref.astype(np.float64), got.astype(np.float64))
    scale = 0.0 if exact else float(np.abs(np.where(np.isfinite(ref64), ref64, 0.0)).max(initial=0.0))

    def pair(i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r, g = ref64[i], got64[j]
        if exact:
            same = np.all(r == g, axis=-1)
            return same, np.where(same, 0.0, np.inf)
        allowed = _allowed_error(np.abs(r), scale, rule)
        with np.errstate(invalid="ignore"):
            error = np.where((r == g) | (np.isnan(r) & np.isnan(g)), 0.0, np.abs(g - r))
            ratio = np.where(error == 0, 0.0, error / np.where(allowed > 0, allowed, np.inf))
        close = np.all(error <= allowed, axis=-1) | np.all(error == 0, axis=-1)
        return close, np.nan_to_num(ratio, nan=np.inf).max(axis=-1, initial=0.0)
    return pair
