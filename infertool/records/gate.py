"""THE regression gate: bench rows against baseline rows that measured the same thing. `bench
--baseline` and `report --baseline` both call `gate`, so the same two result files get the same
verdict from either."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from infertool.errors import InfertoolError
from infertool.records.bench import BenchResult, BenchRow, GateReport, GateRow
from infertool.records.fields import load_json, reading
from infertool.tensors import format_shape

GATE_STATS = ("median", "mean", "p90", "p95", "p99", "min")
BASELINE_LIMIT = 64 * 2**20
SAVE_ONE = "save one with infertool bench --json baseline.json"
# a backend's settings that change speed (each backend declares its own: Backend.gate_settings);
# None where the backend is unknown here. Rows measured with other values are not compared.
SpeedSettings = Callable[[str], "tuple[str, ...] | None"]


@dataclass(frozen=True)
class Measured:
    """A bench row with what it is compared by: its model and the machine it ran on."""

    row: BenchRow
    model: dict  # label, path, sha256, precision
    env: dict
    machine: str | None = None  # the report's name for the machine (M1, ...)
    cell: str | None = None  # the sweep cell it is the result of

    @property
    def label(self) -> str:
        return self.model.get("label") or Path(self.model["path"]).stem

    @property
    def hardware(self) -> tuple:
        """What decides speed: the CPU model and the GPUs (a CI runner's host name comes and goes)."""
        return self.env.get("cpu"), tuple(g.get("name") for g in self.env.get("gpus") or [])

    @property
    def time(self) -> str:
        return self.env.get("timestamp_utc") or ""


def measured(result: BenchResult, machine: str | None = None, cell: str | None = None) -> list[Measured]:
    models = result.labelled_models()
    first = next(iter(models.values()))
    return [Measured(row, models.get(row.model or "", first), result.env, machine, cell) for row in result.rows]


def load_baseline(path: Path) -> BenchResult:
    """A bench result to gate against, read and checked field by field."""
    data = load_json(path, "baseline", SAVE_ONE, BASELINE_LIMIT)
    result = reading(path, "bench result", SAVE_ONE, BenchResult.read, data)
    if not result.rows:
        raise InfertoolError(f"baseline {path} has no rows", hint=SAVE_ONE)
    return result


def _plain(value: object) -> object:
    """A value as it reads back from JSON (tuples as lists), for comparing with a baseline's."""
    return json.loads(json.dumps(value, default=str))


def _difference(row: BenchRow, base: BenchRow, keys: tuple[str, ...]) -> str | None:
    """What the baseline row measured differently (precision, input shapes, a speed setting), or None."""
    if base.precision != row.precision:
        return f"precision {base.precision} in the baseline, {row.precision} now"
    if _plain(base.input_shapes) != _plain(row.input_shapes):
        shapes = lambda found: ", ".join(f"{n} {format_shape(s)}" for n, s in found.items())  # noqa: E731
        return f"input shapes {shapes(base.input_shapes)} in the baseline, {shapes(row.input_shapes)} now"
    for key in keys:
        if _plain(base.settings.get(key)) != _plain(row.settings.get(key)):
            return f"{key} {base.settings.get(key)!r} in the baseline, {row.settings.get(key)!r} now"
    return None


def _match(current: Measured, baseline: Sequence[Measured], by_model: bool, speed: SpeedSettings) -> tuple[Measured | None, str | None]:
    """The newest baseline row that measured the same thing on the same hardware, or why there is none."""
    row = current.row
    keys = speed(row.backend)
    if keys is None:
        return None, f"backend {row.backend} is not installed here: which of its settings change speed is unknown"
    same = [b for b in baseline if b.row.backend == row.backend and b.row.batch == row.batch and (not by_model or b.label == current.label)]
    if not same:
        return None, f"no baseline row for {row.backend} batch {row.batch}"
    here = [b for b in same if b.hardware == current.hardware]
    if not here:
        return None, "the baseline measured it on other hardware"
    here.sort(key=lambda b: b.time, reverse=True)
    differences = [_difference(row, b.row, keys) for b in here]
    if None in differences:
        return here[differences.index(None)], None
    return None, differences[0]


def _noise(row: BenchRow, base: BenchRow, max_cv: float | None) -> str | None:
    if max_cv is None:
        return None
    for label, stats in (("now", row.latency), ("in the baseline", base.timings.get(row.latency_mode))):
        if stats is not None and stats.cv > max_cv:
            return f"CV {stats.cv:.1%} {label} > --max-cv {max_cv:.1%}: too noisy to judge"
    return None


def _gate_row(current: Measured, baseline: Sequence[Measured], by_model: bool, speed: SpeedSettings, max_regression: float, stat: str, max_cv: float | None) -> GateRow:
    row = current.row
    now = getattr(row.latency, stat)
    base, reason = _match(current, baseline, by_model, speed)
    stats = None if base is None else base.row.timings.get(row.latency_mode)
    base_ms = None if stats is None else getattr(stats, stat)
    if reason is None and not base_ms:
        reason = f"the baseline has no {row.latency_mode} {stat}"
    named = {"model": current.label, "machine": current.machine}
    if reason is not None:
        return GateRow(row.backend, row.batch, None, now, None, False, "not compared", reason, **named)
    change = (now - base_ms) / base_ms
    noisy = _noise(row, base.row, max_cv)
    if noisy is not None:
        return GateRow(row.backend, row.batch, base_ms, now, change, False, "left out", noisy, **named)
    regressed = not change <= max_regression  # NaN fails
    return GateRow(row.backend, row.batch, base_ms, now, change, regressed, "regressed" if regressed else "ok", **named)


def gate(
    rows: Sequence[Measured], baseline: Sequence[Measured], name: str, speed: SpeedSettings, max_regression: float, stat: str, max_cv: float | None = None,
) -> GateReport:
    """Each row against the newest baseline row that measured the same thing: model (by label, where
    either side has several), backend, batch, precision, input shapes and the settings its backend
    says change speed (`speed`), on the same hardware. Rows without one, or too noisy (max_cv), are
    reported and left out of the verdict."""
    by_model = len({r.label for r in rows}) > 1 or len({b.label for b in baseline}) > 1
    judged = [_gate_row(r, baseline, by_model, speed, max_regression, stat, max_cv) for r in rows]
    notes = []
    files = {(r.label, r.model.get("sha256")) for r in rows} - {(b.label, b.model.get("sha256")) for b in baseline}
    if files and any(r.judged for r in judged):
        notes.append(f"the baseline was measured on a different file of {', '.join(sorted({label for label, _ in files}))} (another sha256)")
    skipped = [r for r in judged if not r.judged]
    if skipped:
        notes.append(f"{len(skipped)} of {len(judged)} rows not judged: " + "; ".join(f"{r.backend} batch {r.batch}: {r.reason}" for r in skipped))
    if len(skipped) == len(judged):
        notes.append("no row was compared with the baseline: the gate proved nothing")
    return GateReport(name, stat, max_regression, tuple(judged), tuple(notes), max_cv)
