"""THE speedup rule: a row's median latency against the baseline row's, at the same input shapes on
the same machine, never across machines. The baseline row is named by model label and/or backend
(`--baseline-row MODEL | BACKEND | MODEL:BACKEND`), by default the first row. bench records the one
it used; report and sweep use what the results recorded, so a file's speedups read the same everywhere."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from infertool.errors import InfertoolError
from infertool.records.gate import Measured


@dataclass(frozen=True)
class Baseline:
    """The row speedups are measured against: its model label and backend, or the sweep cell it came
    from (None: any)."""

    model: str | None = None
    backend: str | None = None
    cell: str | None = None

    @classmethod
    def parse(cls, text: str | None, labels: Sequence[str], backends: Sequence[str], where: str = "this run") -> Baseline:
        """--baseline-row as the models and backends of the rows read it."""
        if text is None:
            return cls()
        label, sep, backend = text.rpartition(":")
        if sep and label in labels and backend in backends:
            return cls(label, backend)
        if not sep and text in labels:
            return cls(text, None)
        if not sep and text in backends:
            return cls(None, text)
        raise InfertoolError(
            f"--baseline-row '{text}' names no model or backend of {where}",
            hint=f"give a model ({', '.join(labels)}), a backend ({', '.join(backends)}) or MODEL:BACKEND",
        )

    @classmethod
    def read(cls, data: object) -> Baseline | None:
        """As a result recorded it ({"model": ..., "backend": ...}); None where it did not."""
        if not isinstance(data, dict):
            return None
        text = {k: v if isinstance(v, str) else None for k, v in ((k, data.get(k)) for k in ("model", "backend", "cell"))}
        return cls(**text)

    def matches(self, row: Measured) -> bool:
        return self.model in (None, row.label) and self.backend in (None, row.row.backend) and self.cell in (None, row.cell)

    def describe(self) -> str:
        if self.cell is not None:
            return f"sweep cell {self.cell}"
        if self.model is None and self.backend is None:
            return "the first row"
        return " on ".join(part for part in (self.model, self.backend) if part)

    def to_dict(self) -> dict:
        return {"model": self.model, "backend": self.backend, "cell": self.cell}


def _key(row: Measured) -> tuple:
    # json: a sequence input's shape is a list of shapes, an absent optional's None
    return row.machine, json.dumps(sorted(row.row.input_shapes.items()))


def speedups(rows: Sequence[Measured], baseline: Baseline) -> list[float | None]:
    """Each row's speedup over the first row `baseline` matches at its machine and input shapes
    (None where there is none, or a median of 0)."""
    bases: dict[tuple, float] = {}
    for row in rows:
        if baseline.matches(row):
            bases.setdefault(_key(row), row.row.latency.median)
    return [bases[_key(r)] / r.row.latency.median if _key(r) in bases and r.row.latency.median > 0 else None for r in rows]
