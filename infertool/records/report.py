"""`infertool.report/1`: what a report was made of and its gate."""

from __future__ import annotations

from dataclasses import dataclass

from infertool.records.bench import GateReport


@dataclass(frozen=True)
class ReportResult:
    env: dict
    output: str
    images: tuple[str, ...]  # the plots drawn (files beside a Markdown report; embedded in HTML)
    summary: dict  # sources, machines, comparable groups
    gate: GateReport | None = None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {
            "schema": "infertool.report/1", "env": self.env, "output": self.output, "images": list(self.images), **self.summary,
            "gate": self.gate.to_dict() if self.gate else None, "notes": list(self.notes),
        }
