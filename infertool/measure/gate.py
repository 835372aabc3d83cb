"""The CI gate: compare a bench result with a baseline JSON and flag rows that got slower."""

from __future__ import annotations

import json
import math
from pathlib import Path

from infertool.errors import InfertoolError, first_line
from infertool.files import read_bytes
from infertool.results import BenchResult, GateReport, GateRow
from infertool.text import shorten

GATE_STATS = ("median", "mean", "p90", "p95", "p99", "min")
BASELINE_LIMIT = 64 * 2**20
SAVE_ONE = "save one with infertool bench --json baseline.json"


def load_baseline(path: Path) -> dict:
    data = read_bytes(path, "baseline", BASELINE_LIMIT, hint=SAVE_ONE)
    try:
        baseline = json.loads(data)
    except RecursionError as exc:
        raise InfertoolError(f"baseline {shorten(path)} is not an infertool bench result: it is nested too deeply", hint=SAVE_ONE) from exc
    except ValueError as exc:  # UnicodeDecodeError included
        raise InfertoolError(f"baseline {shorten(path)} is not JSON", hint=SAVE_ONE, detail=first_line(exc)) from exc
    problem = _problem(baseline)
    if problem:
        raise InfertoolError(f"baseline {shorten(path)} is not an infertool bench result: {problem}", hint=SAVE_ONE)
    return baseline


def _kind(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")


def _timing_problem(timing: object, where: str) -> str | None:
    if not isinstance(timing, dict):
        return f"{where} is {_kind(timing)}, not an object of statistics"
    for stat in GATE_STATS:
        value = timing.get(stat)
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or not math.isfinite(value) or value < 0:
            found = "missing" if stat not in timing else repr(value) if number else _kind(value)
            return f"{where}.{stat} is {found}, not a time in ms"
    return None


def _row_problem(row: object, where: str) -> str | None:
    if not isinstance(row, dict):
        return f"{where} is {_kind(row)}, not an object"
    if not isinstance(row.get("backend"), str) or isinstance(row.get("batch"), bool) or not isinstance(row.get("batch"), int):
        return f"{where} lacks a backend name and a whole batch size"
    if not isinstance(row.get("latency_mode"), str):
        return f"{where}.latency_mode is {_kind(row.get('latency_mode'))}, not a timing mode"
    timings = row.get("timings_ms", {})
    if not isinstance(timings, dict):
        return f"{where}.timings_ms is {_kind(timings)}, not an object"
    for key, timing in (("latency_ms", row.get("latency_ms")), *((f"timings_ms.{m}", t) for m, t in timings.items())):
        problem = _timing_problem(timing, f"{where}.{shorten(key, 40)}")
        if problem:
            return problem
    return None


def _problem(baseline: object) -> str | None:
    """What makes `baseline` unusable for the gate, or None: every number the gate reads must be one."""
    if not isinstance(baseline, dict):
        return f"it is {_kind(baseline)}, not an object"
    if baseline.get("schema") != "infertool.bench/1":
        return "its schema is not infertool.bench/1"
    for key in ("model", "env"):
        if not isinstance(baseline.get(key, {}), dict):
            return f"'{key}' is {_kind(baseline[key])}, not an object"
    rows = baseline.get("rows")
    if not isinstance(rows, list) or not rows:
        return "it has no rows" if rows in (None, []) else f"'rows' is {_kind(rows)}, not a list"
    return next((p for i, row in enumerate(rows) if (p := _row_problem(row, f"rows[{i}]"))), None)


def _baseline_ms(row: dict, mode: str, stat: str) -> float | None:
    timing = row.get("timings_ms", {}).get(mode) or (row.get("latency_ms") if row.get("latency_mode") == mode else None)
    return None if timing is None else timing.get(stat)


def gate(result: BenchResult, baseline: dict, path: Path, max_regression: float, stat: str) -> GateReport:
    by_key = {(r["backend"], r["batch"]): r for r in baseline.get("rows", [])}
    rows, notes = [], []
    if baseline.get("model", {}).get("sha256") != result.model["sha256"]:
        notes.append("the baseline was measured on a different model file")
    if baseline.get("env", {}).get("gpus") != result.env.get("gpus") or baseline.get("env", {}).get("cpu") != result.env.get("cpu"):
        notes.append("the baseline was measured on different hardware")
    for row in result.rows:
        current = getattr(row.latency, stat)
        base = by_key.get((row.backend, row.batch))
        base_ms = None if base is None else _baseline_ms(base, row.latency_mode, stat)
        if base_ms is None or base_ms <= 0:
            notes.append(f"{row.backend} batch {row.batch}: no baseline {row.latency_mode} {stat}; not gated")
            rows.append(GateRow(row.backend, row.batch, None, current, None, False))
            continue
        change = (current - base_ms) / base_ms
        rows.append(GateRow(row.backend, row.batch, base_ms, current, change, not change <= max_regression))  # NaN fails
    return GateReport(str(path), stat, max_regression, tuple(rows), tuple(notes))
