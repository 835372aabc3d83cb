"""`infertool.run/1`: one inference: its outputs summarized, top-k, files saved."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from infertool import dtypes


@dataclass(frozen=True)
class OutputSummary:
    """One output: its ONNX type (bfloat16, float8... by name, not numpy's stand-in) and the range of
    its values; a sequence counts its tensors (`elements`), an empty optional is not `present`."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    min: float | None
    max: float | None
    mean: float | None
    nan: int
    inf: int
    elements: int | None = None
    present: bool = True

    @classmethod
    def of(cls, name: str, value: Any) -> OutputSummary:
        if value is None:
            return cls(name, (), "none", None, None, None, 0, 0, present=False)
        if isinstance(value, list):
            arrays = [np.asarray(v) for v in value]
            shapes = {a.shape for a in arrays}
            kinds = {dtypes.from_numpy(a.dtype) for a in arrays}
            flat = np.concatenate([a.ravel() for a in arrays]) if arrays and len(kinds) == 1 else np.zeros(0)
            stats = cls.of(name, flat)
            shape = next(iter(shapes)) if len(shapes) == 1 else ()
            return replace(stats, shape=shape, dtype=f"sequence({kinds.pop() if len(kinds) == 1 else '?'})", elements=len(arrays))
        dtype = dtypes.from_numpy(value.dtype)
        numeric = dtypes.widened(value)
        if value.size == 0 or numeric.dtype.kind not in "biuf":
            return cls(name, value.shape, dtype, None, None, None, 0, 0)
        values = numeric.astype(np.float64)
        finite = values[np.isfinite(values)]
        return cls(
            name, value.shape, dtype,
            float(finite.min()) if finite.size else None, float(finite.max()) if finite.size else None,
            float(finite.mean()) if finite.size else None, int(np.isnan(values).sum()), int(np.isinf(values).sum()),
        )

    def to_dict(self) -> dict:
        return {**self.__dict__, "shape": list(self.shape)}


@dataclass(frozen=True)
class TopK:
    output: str
    rows: tuple[tuple[tuple[int, str, float, float | None], ...], ...]  # per sample: (class, label, score, probability)
    scores: str = "softmax"  # how probabilities came from the scores: probabilities (as given), softmax, sigmoid, raw (none)

    def to_dict(self) -> dict:
        return {
            "output": self.output, "scores": self.scores,
            "rows": [[{"class": c, "label": label, "score": s, "probability": p} for c, label, s, p in row] for row in self.rows],
        }


@dataclass(frozen=True)
class RunResult:
    model: str
    backend: str
    inputs: dict
    outputs: tuple[OutputSummary, ...]
    saved: str | None
    top_k: TopK | None
    saved_inputs: str | None = None
    startup: dict = field(default_factory=dict)  # load_ms, first_inference_ms (the one inference: a first one)
    notes: tuple[str, ...] = ()
    env: dict = field(default_factory=dict)
    fed: dict = field(default_factory=dict)  # input -> what it was fed, in words (a file, or the generated values)

    def to_dict(self) -> dict:
        return {
            "schema": "infertool.run/1", "env": self.env, "model": self.model, "backend": self.backend, "inputs": self.inputs, "fed": self.fed,
            "outputs": [o.to_dict() for o in self.outputs], "saved": self.saved,
            "top_k": self.top_k.to_dict() if self.top_k else None, "saved_inputs": self.saved_inputs, "startup_ms": self.startup,
            "notes": list(self.notes),
        }
