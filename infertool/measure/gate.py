"""The CI gate: compare a bench result with a baseline JSON and flag rows that got slower."""

from __future__ import annotations

import json
from pathlib import Path

from infertool.errors import InfertoolError, first_line
from infertool.results import BenchResult, GateReport, GateRow

GATE_STATS = ("median", "mean", "p90", "p95", "p99", "min")


def load_baseline(path: Path) -> dict:
    if not path.is_file():
        raise InfertoolError(f"baseline {path} not found", hint="save one with infertool bench --json baseline.json")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InfertoolError(f"baseline {path} is not JSON: {first_line(exc)}") from exc
    if not isinstance(data, dict) or data.get("schema") != "infertool.bench/1":
        raise InfertoolError(f"baseline {path} is not an infertool bench result", hint="save one with infertool bench --json baseline.json")
    return data


def _baseline_ms(row: dict, mode: str, stat: str) -> float | None:
    timing = row.get("timings_ms", {}).get(mode) or (row.get("latency_ms") if row.get("latency_mode") == mode else None)
    return None if timing is None else timing.get(stat)


def gate(result: BenchResult, baseline: dict, path: Path, max_regression: float, stat: str) -> GateReport:
    # rows match by backend and batch, and by model label where the run compares several models
    # (a baseline from before labels existed measured one model: the first)
    by_model = len({r.model for r in result.rows}) > 1
    first = result.rows[0].model if result.rows else None
    by_key = {(r.get("model", first) if by_model else None, r["backend"], r["batch"]): r for r in baseline.get("rows", [])}
    rows, notes = [], []
    if baseline.get("model", {}).get("sha256") != result.model["sha256"]:
        notes.append("the baseline was measured on a different model file")
    if baseline.get("env", {}).get("gpus") != result.env.get("gpus") or baseline.get("env", {}).get("cpu") != result.env.get("cpu"):
        notes.append("the baseline was measured on different hardware")
    for row in result.rows:
        current = getattr(row.latency, stat)
        base = by_key.get((row.model if by_model else None, row.backend, row.batch))
        base_ms = None if base is None else _baseline_ms(base, row.latency_mode, stat)
        if base_ms is None or base_ms <= 0:
            notes.append(f"{f'{row.model} ' if by_model else ''}{row.backend} batch {row.batch}: no baseline {row.latency_mode} {stat}; not gated")
            rows.append(GateRow(row.backend, row.batch, None, current, None, False, row.model))
            continue
        change = (current - base_ms) / base_ms
        rows.append(GateRow(row.backend, row.batch, base_ms, current, change, change > max_regression, row.model))
    return GateReport(str(path), stat, max_regression, tuple(rows), tuple(notes))
