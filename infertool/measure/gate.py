"""The CI gate: compare a bench result with a baseline JSON and flag rows that got slower."""

from __future__ import annotations

import json
import math
from pathlib import Path

from infertool.errors import InfertoolError, first_line
from infertool.files import read_bytes
from infertool.results import BenchResult, BenchRow, GateReport, GateRow
from infertool.tensors import format_shape
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


# row settings that change speed: rows measured with other values are not compared
SPEED_SETTINGS = ("providers", "intra_op_threads", "inter_op_threads", "graph_optimization", "provider_options", "io_binding", "cuda_graph", "plan", "profiles")


def _baseline_stats(row: dict, mode: str) -> dict | None:
    return row.get("timings_ms", {}).get(mode) or (row.get("latency_ms") if row.get("latency_mode") == mode else None)


def _plain(value: object) -> object:
    """A value as it reads back from JSON (tuples as lists), for comparing with a baseline's."""
    return json.loads(json.dumps(value, default=str))


def _difference(row: BenchRow, base: dict) -> str | None:
    """What the baseline row measured differently (precision, input shapes, a speed setting), or None."""
    if base.get("precision") != row.precision:
        return f"precision {base.get('precision')} in the baseline, {row.precision} now"
    if _plain(base.get("input_shapes")) != _plain(row.input_shapes):
        shapes = lambda found: ", ".join(f"{n} {format_shape(s) if isinstance(s, list) else s}" for n, s in (found or {}).items())  # noqa: E731
        return f"input shapes {shapes(base.get('input_shapes'))} in the baseline, {shapes(row.input_shapes)} now"
    settings = base.get("settings") or {}
    for key in SPEED_SETTINGS:
        if _plain(settings.get(key)) != _plain(row.settings.get(key)):
            return f"{key} {settings.get(key)!r} in the baseline, {row.settings.get(key)!r} now"
    return None


def _match(row: BenchRow, rows: list[dict], model: str | None) -> tuple[dict | None, str | None]:
    """The baseline row measuring the same thing, or why there is none; with several models in the
    run, of the same model label (a baseline from before labels measured one model: the first)."""
    candidates = [r for r in rows if r.get("backend") == row.backend and r.get("batch") == row.batch and (model is None or r.get("model", model) == row.model)]
    if not candidates:
        return None, f"no baseline row for {row.backend} batch {row.batch}"
    differences = [_difference(row, c) for c in candidates]
    if None in differences:
        return candidates[differences.index(None)], None
    return None, differences[0]


def _noise(row: BenchRow, base_stats: dict, max_cv: float | None) -> str | None:
    if max_cv is None:
        return None
    for label, cv in (("now", row.latency.cv), ("in the baseline", base_stats.get("cv"))):
        if cv is not None and cv > max_cv:
            return f"CV {cv:.1%} {label} > --max-cv {max_cv:.1%}: too noisy to judge"
    return None


def _gate_row(row: BenchRow, rows: list[dict], max_regression: float, stat: str, max_cv: float | None, first: str | None) -> GateRow:
    current = getattr(row.latency, stat)
    base, reason = _match(row, rows, first)
    stats = None if base is None else _baseline_stats(base, row.latency_mode)
    base_ms = None if stats is None else stats.get(stat)
    if reason is None and (base_ms is None or base_ms <= 0):
        reason = f"the baseline has no {row.latency_mode} {stat}"
    if reason is not None:
        return GateRow(row.backend, row.batch, None, current, None, False, "not compared", reason, model=row.model)
    change = (current - base_ms) / base_ms
    noisy = _noise(row, stats, max_cv)
    if noisy is not None:
        return GateRow(row.backend, row.batch, base_ms, current, change, False, "left out", noisy, model=row.model)
    regressed = not change <= max_regression  # NaN fails
    return GateRow(row.backend, row.batch, base_ms, current, change, regressed, "regressed" if regressed else "ok", model=row.model)


def gate(result: BenchResult, baseline: dict, path: Path, max_regression: float, stat: str, max_cv: float | None = None) -> GateReport:
    """Each row against the baseline row that measured the same thing: backend, batch, precision,
    input shapes and the settings that change speed. Rows without one, or too noisy (--max-cv),
    are reported and left out of the verdict."""
    notes = []
    if baseline.get("model", {}).get("sha256") != result.model["sha256"]:
        notes.append("the baseline was measured on a different model file")
    if baseline.get("env", {}).get("gpus") != result.env.get("gpus") or baseline.get("env", {}).get("cpu") != result.env.get("cpu"):
        notes.append("the baseline was measured on different hardware")
    several = len({r.model for r in result.rows}) > 1
    first = result.rows[0].model if several and result.rows else None
    rows = tuple(_gate_row(row, baseline.get("rows", []), max_regression, stat, max_cv, first) for row in result.rows)
    skipped = [r for r in rows if r.status in ("not compared", "left out")]
    if skipped:
        notes.append(f"{len(skipped)} of {len(rows)} rows not judged: " + "; ".join(f"{r.backend} batch {r.batch}: {r.reason}" for r in skipped))
    if len(skipped) == len(rows):
        notes.append("no row was compared with the baseline: the gate proved nothing")
    return GateReport(str(path), stat, max_regression, rows, tuple(notes), max_cv)
