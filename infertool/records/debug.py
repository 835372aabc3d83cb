"""`infertool.debug-layers/1` and `infertool.debug-precision/1`."""

from __future__ import annotations

from dataclasses import dataclass

from infertool.divergence import Divergence


@dataclass(frozen=True)
class LayerRow:
    """One tensor of `debug layers`: where it comes from and how far the candidate's strays."""

    tensor: str
    node: str  # the reference node producing it ("" when unnamed)
    op: str
    candidate: str  # the candidate tensor compared (a DequantizeLinear output where quantized)
    quantized: bool
    divergence: Divergence
    growth: float | None  # its error over its node's inputs' (None: not known)
    flags: tuple[str, ...]
    diverged: bool  # past the precision's tolerance

    def to_dict(self) -> dict:
        return {
            "tensor": self.tensor, "node": self.node, "op": self.op, "candidate": self.candidate, "quantized": self.quantized,
            **self.divergence.to_dict(), "growth": self.growth, "flags": list(self.flags), "diverged": self.diverged,
        }


@dataclass(frozen=True)
class LayersResult:
    reference: dict  # path, sha256, backend, precision
    candidate: dict
    precision: str  # the tolerance class applied
    tolerance: dict  # atol, rtol, min_cosine
    samples: int
    data: str
    rows: tuple[LayerRow, ...]  # topological order
    outputs: tuple[LayerRow, ...]  # the final outputs of the unmodified candidate
    first_divergence: int | None  # index into rows
    unmatched: tuple[str, ...]  # reference tensors not compared
    read_as: str  # how the candidate's tensors were read
    notes: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def first(self) -> LayerRow | None:
        return None if self.first_divergence is None else self.rows[self.first_divergence]

    def to_dict(self) -> dict:
        first = self.first
        return {
            "schema": "infertool.debug-layers/1", "reference": self.reference, "candidate": self.candidate, "precision": self.precision,
            "tolerance": self.tolerance, "samples": self.samples, "data": self.data, "read_as": self.read_as,
            "first_divergence": None if first is None else {"index": self.first_divergence, "tensor": first.tensor, "node": first.node, "op": first.op},
            "diverged": first is not None or any(o.diverged for o in self.outputs),
            "rows": [r.to_dict() for r in self.rows], "outputs": [o.to_dict() for o in self.outputs],
            "unmatched": list(self.unmatched), "notes": list(self.notes), "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class PrecisionStep:
    """One conversion of `debug precision`'s search, evaluated on every sample."""

    index: int
    phase: str  # convert all | grow | bisect | prune
    keep: tuple[str, ...]
    passed: bool
    min_cosine: float | None  # the worst output cosine of any sample
    top1: float | None
    failing: int  # samples that fail the gate
    samples: int
    graph: dict  # node counts of the converted graph
    seconds: float

    def describe(self) -> str:
        kept = ", ".join(self.keep[:4]) + (f" and {len(self.keep) - 4} more" if len(self.keep) > 4 else "")
        verdict = "passes" if self.passed else f"fails ({self.failing}/{self.samples} samples)" if self.failing else "fails"
        cosine = "-" if self.min_cosine is None else "NaN/Inf" if self.min_cosine != self.min_cosine else f"{self.min_cosine:.6f}"
        return f"step {self.index} ({self.phase}): keeping {len(self.keep)} node(s){': ' + kept if kept else ''} -> {verdict}, min cosine {cosine}"

    def to_dict(self) -> dict:
        return {
            "index": self.index, "phase": self.phase, "keep": list(self.keep), "passed": self.passed, "min_cosine": self.min_cosine,
            "top1": self.top1, "failing_samples": self.failing, "samples": self.samples, "graph": self.graph, "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class PrecisionResult:
    model: str
    sha256: str
    precision: str
    gate: dict  # the gate applied: the precision's tolerance, or min_cosine / min_top1
    data: str
    samples: int
    keep: tuple[str, ...]
    keep_file: str
    steps: tuple[PrecisionStep, ...]
    ranking: tuple[str, ...]  # the most suspect nodes, first first
    first_divergence: dict | None  # the first diverging tensor of the fully converted model
    cost: dict  # kept nodes, casts added / dequantize nodes removed, accuracy before and after
    notes: tuple[str, ...] = ()
    seconds: float = 0.0
    command: str = ""  # the quantize command the keep list was verified for

    def to_dict(self) -> dict:
        return {
            "schema": "infertool.debug-precision/1", "command": self.command, "model": {"path": self.model, "sha256": self.sha256}, "precision": self.precision,
            "gate": self.gate, "data": self.data, "samples": self.samples, "keep": list(self.keep), "keep_file": self.keep_file,
            "first_divergence": self.first_divergence, "ranking": list(self.ranking), "cost": self.cost,
            "steps": [s.to_dict() for s in self.steps], "notes": list(self.notes), "seconds": round(self.seconds, 3),
        }
