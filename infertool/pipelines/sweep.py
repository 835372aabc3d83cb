"""`sweep`: a spec of models x precisions x backends x input shapes x batches (x devices) expanded
into cells with stable IDs; each cell is one `infertool bench` process writing one result file.
Shards split the cells deterministically (SLURM arrays, Kubernetes Indexed Jobs, CI matrices);
`--resume` skips finished cells; `report` merges the shards' results."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from infertool import environment, onnx_io
from infertool.backends import registry
from infertool.errors import CheckFailed, InfertoolError, first_line
from infertool.files import check_output, file_sha256, read_bytes, write_text_atomic
from infertool.optional import require
from infertool.pipelines import isolation, sweep_run
from infertool.pipelines.bench import BenchOptions
from infertool.pipelines.quantize import QuantizeOptions, quantize
from infertool.records.fields import load_json
from infertool.records.sweep import SweepResult
from infertool.reporting import Reporter, SilentReporter
from infertool.text import printable, shorten
from infertool.vocabulary import QUANTIZE_PRECISIONS

AS_IS = "as-is"  # the model file as given, in whatever precision its graph carries
SPEC_KEYS = ("models", "precisions", "backends", "batches", "shapes", "devices", "bench_args", "quantize_args")
SET_PER_CELL = {"--json": "the sweep writes each cell's result", "--device": "devices", "--backend": "backends", "-b": "backends",
                "--batch": "batches", "--label": "models (label)", "--input-shape": "shapes"}
SET_BY_QUANTIZE = {"-p": "precisions", "--precision": "precisions", "-o": "the sweep's models/ folder", "--output": "the sweep's models/ folder", "--json": "the sweep"}
WRITES_OUTSIDE = {"bench_args": ("--csv", "--markdown", "--save-optimized", "--force", "-f"), "quantize_args": ("--force", "-f")}
SHAPE = re.compile(r"^([^\s]+:)?[0-9]+(x[0-9]+)*$")
EXECUTORS = ("local", "ray")
SPEC_LIMIT = 2**20  # bytes of a spec
SPEC_VALUES = 100_000  # values in a spec, an alias counted each time it is used ("billion laughs")
SPEC_DEPTH = 8  # nesting of a spec's values (models: - {path: ...} is 3)
MAX_CELLS = 10_000  # cells one spec expands to
MAX_DEVICE = 1023
MAX_BATCH = 2**31 - 1


@dataclass(frozen=True)
class ModelEntry:
    path: Path
    label: str


@dataclass(frozen=True)
class Spec:
    path: Path
    sha256: str
    models: tuple[ModelEntry, ...]
    precisions: tuple[str, ...] = (AS_IS,)
    backends: tuple[str, ...] = ("ort-cpu",)
    batches: tuple[int | None, ...] = (None,)
    shapes: tuple[tuple[str, ...], ...] = ((),)
    devices: tuple[int | None, ...] = (None,)
    bench_args: tuple[str, ...] = ()
    quantize_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Cell:
    id: str
    index: int  # position in the expansion: what shards split on
    label: str  # the model's name in the results: its label, and the precision where the spec sweeps precisions
    model: ModelEntry
    precision: str
    backend: str
    batch: int | None
    shapes: tuple[str, ...]
    device: int | None  # the spec's devices axis: this cell runs on that GPU
    path: Path  # the file benchmarked: the model, or its quantized version
    reference: Path | None  # the fp32 original, for quantized versions
    on_gpu: bool
    bench_args: tuple[str, ...] = ()
    cpus: int = 1  # what a CPU cell asks Ray for: its --threads

    def to_dict(self) -> dict:
        return {
            "id": self.id, "index": self.index, "label": self.label, "model": self.model.label, "source": str(self.model.path),
            "precision": self.precision, "backend": self.backend, "batch": self.batch, "shapes": list(self.shapes), "device": self.device,
            "path": str(self.path), "reference": str(self.reference) if self.reference else None, "on_gpu": self.on_gpu,
            "bench_args": list(self.bench_args), "cpus": self.cpus,
        }


@dataclass(frozen=True)
class Shard:
    index: int  # 0-based
    count: int
    source: str  # where i/N came from: --shard, SLURM_ARRAY_TASK_ID, ...

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass(frozen=True)
class SweepOptions:
    output: Path
    bench_options: Callable[[tuple[str, ...], tuple[str, ...]], BenchOptions]  # (the spec's bench_args, a cell's shapes), read by the CLI
    quantize_options: Callable[[tuple[str, ...], str, Path], QuantizeOptions]  # (the spec's quantize_args, precision, output), read by the CLI
    shard: Shard | None = None
    resume: bool = False
    force: bool = False
    retries: int = 1
    timeout: float = 3600.0  # seconds one attempt of a cell may take
    executor: str = "local"
    address: str | None = None  # Ray cluster address; None: start a local one
    devices: tuple[str, ...] | None = None  # --devices: the device slots; None: CUDA_VISIBLE_DEVICES or NVML's GPUs
    list_only: bool = False


# ---------------------------------------------------------------- the spec


def _fail(spec: Path, text: str, hint: str | None = None) -> InfertoolError:
    return InfertoolError(f"sweep spec {spec}: {text}", hint=hint or "see `infertool sweep --help` for the spec's keys")


def _items(raw: dict, key: str, spec: Path) -> list | None:
    """A key's values: a YAML list, one value, or (axes and args) one string of several."""
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, str) and key in ("precisions", "backends", "batches", "devices"):
        value = [v.strip() for v in value.split(",") if v.strip()]
        value = [int(v) if re.fullmatch(r"[0-9]{1,30}", v) else v for v in value]
    elif isinstance(value, str) and key.endswith("_args"):
        try:
            value = shlex.split(value)
        except ValueError as exc:
            raise _fail(spec, f"'{key}' is not a command line: {first_line(exc)}", hint="close its quotes") from None
    items = value if isinstance(value, list) else [value]
    if not items:
        raise _fail(spec, f"'{key}' is empty")
    return items


def _texts(raw: dict, key: str, spec: Path, default: list[str]) -> tuple[str, ...]:
    """A key's values that must each be one word of text (numbers read as text)."""
    items = _items(raw, key, spec) or default
    bad = [i for i in items if isinstance(i, (dict, list, bool)) or i is None]
    if bad:
        raise _fail(spec, f"'{key}' holds {_kind(bad[0])}, not text", hint=f"write {key} as text, e.g. {key}: {', '.join(default)}")
    return tuple(dict.fromkeys(str(i) for i in items))


def _kind(value: object) -> str:
    return {dict: "a mapping", list: "a list", bool: "true/false", type(None): "nothing"}.get(type(value), shorten(printable(repr(value)), 40))


def _bounded(raw: object, spec: Path) -> None:
    """Refuse a spec whose values, aliases expanded, are too many or nested too deeply: a walk
    that stops at the limit, never the expansion itself."""
    stack, seen = [(raw, 0)], 0
    while stack:
        value, depth = stack.pop()
        seen += 1
        if seen > SPEC_VALUES:
            raise _fail(spec, f"holds more than {SPEC_VALUES:,} values (aliases counted each time they are used)", hint="write a smaller spec")
        if depth > SPEC_DEPTH:
            raise _fail(spec, f"is nested more than {SPEC_DEPTH} levels deep", hint="see `infertool sweep --help` for the spec's shape")
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        stack.extend((child, depth + 1) for child in children)


def _models(raw: dict, spec: Path) -> tuple[ModelEntry, ...]:
    entries = []
    for item in _items(raw, "models", spec) or []:
        given = item if isinstance(item, dict) else {"path": item}
        label = given.get("label")
        if not isinstance(given.get("path"), str) or set(given) - {"path", "label"} or not isinstance(label, (str, int, type(None))):
            raise _fail(spec, f"a model is a path or {{path: ..., label: ...}} (text), not {shorten(printable(repr(item)), 60)}")
        path = _model_path(spec, given["path"])
        entries.append(ModelEntry(path, printable(str(label or path.stem))))
    if not entries:
        raise _fail(spec, "no models", hint="list them under 'models:'")
    labels = [e.label for e in entries]
    if len(set(labels)) != len(labels):
        raise _fail(spec, "two models share a label", hint="give each a label: {path: ..., label: ...}")
    return tuple(entries)


def _model_path(spec: Path, given: str) -> Path:
    """A model named by the spec, relative to it; one line where the name cannot be a file's."""
    try:
        path = (spec.parent / given).resolve()
        found = path.is_file()
    except (OSError, ValueError):  # an embedded NUL, a name too long
        found = False
    if not found:
        raise _fail(spec, f"model {shorten(printable(given), 80)} not found (paths are relative to the spec)")
    return path


def _option_name(arg: str) -> str:
    """The option an argument sets: --name=value -> --name, -oPATH -> -o."""
    return arg.split("=", 1)[0] if arg.startswith("--") else arg[:2] if arg.startswith("-") else arg


def _args(raw: dict, key: str, forbidden: dict, spec: Path) -> tuple[str, ...]:
    items = _items(raw, key, spec) or []
    bad = [a for a in items if isinstance(a, (dict, list)) or a is None]
    if bad:
        raise _fail(spec, f"'{key}' holds {_kind(bad[0])}, not a command-line argument", hint=f"write {key} as a list of words or one line")
    args = tuple(str(a) for a in items)
    for arg in args:
        name = _option_name(arg)
        if name in forbidden or name in WRITES_OUTSIDE[key]:
            why = f"the sweep sets it ({forbidden[name]})" if name in forbidden else "a cell writes only inside the output folder"
            raise _fail(spec, f"{key} may not hold {shorten(printable(arg), 60)}: {why}")
    return args


def _ints(raw: dict, key: str, low: int, high: int, spec: Path) -> tuple[int, ...] | None:
    items = _items(raw, key, spec)
    if items is not None and not all(isinstance(i, int) and not isinstance(i, bool) and low <= i <= high for i in items):
        shown = shorten(printable(", ".join(map(str, items))), 60)
        raise _fail(spec, f"'{key}' takes whole numbers from {low} to {high:,}, not {shown}")
    return None if items is None else tuple(dict.fromkeys(items))


def _shapes(raw: dict, spec: Path) -> tuple[tuple[str, ...], ...] | None:
    items = _items(raw, "shapes", spec)
    if items is None:
        return None
    sets = tuple(tuple(s) if isinstance(s, list) else (s,) for s in items)
    bad = [s for group in sets for s in group if not isinstance(s, str) or not SHAPE.match(s)]
    if bad:
        raise _fail(spec, f"malformed shape {_kind(bad[0])}", hint="write NAME:1x3x224x224 (a list of them for several inputs)")
    return sets


def load_spec(path: Path) -> Spec:
    yaml = require("yaml", "sweep specs")
    data = read_bytes(path, "sweep spec", SPEC_LIMIT, hint="give a YAML file (see `infertool sweep --help`)")
    try:
        raw = yaml.safe_load(data.decode())
    except RecursionError:
        raise _fail(path, f"is nested more than {SPEC_DEPTH} levels deep") from None
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InfertoolError(f"sweep spec {shorten(path)} is not YAML: {shorten(printable(first_line(exc)), 120)}", hint="fix the YAML") from None
    if not isinstance(raw, dict):
        raise _fail(path, "the spec is a mapping of keys (models, backends, batches, ...)")
    _bounded(raw, path)
    unknown = sorted(shorten(printable(str(k)), 40) for k in set(raw) - set(SPEC_KEYS))
    if unknown:
        raise _fail(path, f"unknown key '{unknown[0]}'", hint=f"the keys are {', '.join(SPEC_KEYS)}")
    precisions = _texts(raw, "precisions", path, [AS_IS])
    for precision in precisions:
        if precision not in (AS_IS, "fp32", *QUANTIZE_PRECISIONS):
            raise _fail(path, f"unknown precision '{shorten(printable(precision), 40)}'", hint=f"choose from {AS_IS}, fp32, {', '.join(QUANTIZE_PRECISIONS)}")
    backends = _texts(raw, "backends", path, ["ort-cpu"])
    for backend in backends:
        registry.get(backend)
    spec = Spec(
        path, file_sha256(path), _models(raw, path), precisions, backends,
        _ints(raw, "batches", 1, MAX_BATCH, path) or (None,), _shapes(raw, path) or ((),), _ints(raw, "devices", 0, MAX_DEVICE, path) or (None,),
        _args(raw, "bench_args", SET_PER_CELL, path), _args(raw, "quantize_args", SET_BY_QUANTIZE, path),
    )
    count = math.prod(len(axis) for axis in (spec.models, spec.precisions, spec.backends, spec.shapes, spec.batches, spec.devices))
    if count > MAX_CELLS:
        raise _fail(path, f"expands to {count:,} cells, more than the {MAX_CELLS:,} one sweep runs", hint="split it into several specs")
    return spec


# ---------------------------------------------------------------- cells


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:6]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


def _version(spec: Spec, model: ModelEntry, precision: str, output: Path) -> tuple[Path, Path | None]:
    """The file a cell of this model and precision benchmarks, and the reference it is checked against."""
    if precision == AS_IS or precision == onnx_io.describe(model.path).precision:
        return model.path, None
    name = f"{_slug(model.label)}-{precision}-{_digest(file_sha256(model.path), precision, spec.quantize_args)}.onnx"
    return (output / "models" / name).resolve(), model.path


def _threads(args: tuple[str, ...]) -> int:
    for index, arg in enumerate(args):
        value = arg.partition("=")[2] if arg.startswith("--threads=") else args[index + 1] if arg == "--threads" and index + 1 < len(args) else ""
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 1


def expand(spec: Spec, output: Path) -> list[Cell]:
    """Every cell, in a fixed order: models, precisions, backends, shapes, batches, devices. An ID
    is made of what the cell measures, so it is the same on every machine and every run."""
    cells: list[Cell] = []
    for model in spec.models:
        for precision in spec.precisions:
            path, reference = _version(spec, model, precision, output)
            label = model.label if spec.precisions == (AS_IS,) else f"{model.label}-{precision}"
            for backend in spec.backends:
                on_gpu = registry.get(backend).capabilities.on_gpu
                for shapes in spec.shapes:
                    for batch in spec.batches:
                        for device in spec.devices:
                            parts = [label, backend, *([f"b{batch}"] if batch else []), *([_slug("_".join(shapes))] if shapes else []),
                                     *([f"gpu{device}"] if device is not None else [])]
                            key = _digest(label, backend, batch, shapes, device, spec.bench_args)
                            cells.append(Cell(f"{_slug('.'.join(parts))}-{key}", len(cells), label, model, precision, backend, batch, shapes,
                                              device, path, reference, on_gpu, spec.bench_args, _threads(spec.bench_args)))
    return cells


def in_shard(cells: list[Cell], shard: Shard | None) -> list[Cell]:
    """Cell k belongs to shard k mod N: the shards partition the cells, each a spread of the spec."""
    return cells if shard is None else [c for c in cells if c.index % shard.count == shard.index]


# ---------------------------------------------------------------- running


def _slots(options: SweepOptions, cells: list[Cell], reporter: Reporter) -> tuple[list[str | None], bool]:
    """Device slots (each runs one cell at a time) and whether they are NVML indices."""
    if options.devices is not None:
        if not environment.gpus()[0]:
            reporter.note(f"{len(options.devices)} pretend devices on a machine without a GPU: cells run at once share the CPU, so their timings disturb each other")
        slots, pci_order = list(options.devices), True
    elif not any(c.on_gpu or c.device is not None for c in cells):
        slots, pci_order = [None], False  # CPU cells one at a time: parallel runs would skew each other's timings
    elif os.environ.get("CUDA_VISIBLE_DEVICES"):
        slots, pci_order = [d.strip() for d in os.environ["CUDA_VISIBLE_DEVICES"].split(",") if d.strip()], False
    else:
        found, reason = environment.gpus()
        if not found:
            raise InfertoolError(f"the sweep has GPU cells but this machine has no GPU: {reason}", hint="run it where the GPUs are, or pass --devices N to test the plumbing")
        slots, pci_order = [str(g.index) for g in found], True
    pinned = sorted({str(c.device) for c in cells if c.device is not None} - set(map(str, slots)))
    if pinned:
        raise InfertoolError(f"the spec pins cells to device {pinned[0]}, which is not one of this machine's ({', '.join(map(str, slots))})", hint="fix 'devices:' in the spec")
    return slots, pci_order


def _finished(path: Path) -> bool:
    """Whether a cell's file holds its bench result; a damaged one (a pipe, a link to /dev/zero,
    deep nesting) is not one, and the cell runs again."""
    if not os.path.lexists(path):
        return False
    try:
        data = load_json(path, "cell result", "run the cell again")
    except InfertoolError:
        return False
    return isinstance(data, dict) and data.get("schema") == "infertool.bench/1"


def summary_name(shard: Shard | None) -> str:
    return "sweep.json" if shard is None else f"sweep.shard-{shard.index}-of-{shard.count}.json"


def _check_output(spec: Spec, options: SweepOptions) -> None:
    """The output folder can hold the results, and its summary is not the spec itself."""
    summary = options.output / summary_name(options.shard)
    if os.path.lexists(options.output) and not options.output.is_dir():
        raise InfertoolError(f"sweep output {shorten(options.output)} is not a folder", hint="give -o a folder (new or of an earlier sweep)")
    if summary.resolve() == spec.path.resolve():
        raise InfertoolError(f"the sweep's summary {shorten(summary)} would overwrite its own spec", hint="give -o another folder")
    check_output(summary, force=True)
    check_output(options.output / "cells" / "cell.json", force=True)


def _plan(cells: list[Cell], options: SweepOptions) -> tuple[list[Cell], list[Cell]]:
    """(cells to run, finished cells --resume skips); results or a summary in the way need
    --resume or --force."""
    folder = options.output / "cells"
    there = [c for c in cells if os.path.lexists(folder / f"{c.id}.json")]
    finished = [c for c in there if _finished(folder / f"{c.id}.json")]
    summary = options.output / summary_name(options.shard)
    if (there or os.path.lexists(summary)) and not options.resume and not options.force and not options.list_only:
        raise InfertoolError(
            f"{shorten(options.output)} already holds {f'results of {len(there)} of these cells' if there else summary.name}",
            hint="pass --resume to skip finished cells, or --force to run them again",
        )
    skipped = finished if options.resume else []
    return [c for c in cells if c not in skipped], skipped


@dataclass(frozen=True)
class QuantizeJob:
    model: Path
    options: QuantizeOptions


def quantize_version(job: QuantizeJob, reporter: Reporter) -> dict:
    """The child's side: one quantized version, made and written; its report."""
    return quantize(job.model, job.options, reporter).to_dict()


def _quantize(cells: list[Cell], spec: Spec, options: SweepOptions, reporter: Reporter) -> dict[Path, str]:
    """The quantized versions the cells need, made once each, each in a fresh process; why a version could not be made."""
    failures: dict[Path, str] = {}
    for path, cell in {c.path: c for c in cells if c.reference is not None}.items():
        if path.is_file():
            continue
        job = QuantizeJob(cell.model.path, options.quantize_options(spec.quantize_args, cell.precision, path))
        with reporter.task(f"quantizing {cell.model.label} to {cell.precision}"):
            try:
                report = isolation.run(isolation.Job(quantize_version, job, f"quantize {cell.model.label} to {cell.precision}", echo_stderr=False), SilentReporter())
                write_text_atomic(path.with_suffix(".quantize.json"), json.dumps(report, indent=2, default=str) + "\n", force=True)
            except InfertoolError as exc:  # a failed gate included: no file, the cells on it fail
                failures[path] = f"quantizing {cell.model.label} to {cell.precision} failed: {exc.one_line()}"
    return failures


@dataclass
class _Recorder:
    """Writes each cell's result as it finishes and keeps the summary entries."""

    output: Path
    reporter: Reporter
    advance: Callable[..., None]  # the progress task
    executor: str
    entries: dict[str, dict] = field(default_factory=dict)

    def __call__(self, cell: dict, record: dict) -> None:
        attempts = record["attempts"]
        placement = {"device": cell["device"], "device_slot": record.get("device_slot"), "cuda_visible_devices": record.get("cuda_visible_devices"),
                     "host": record.get("host"), "executor": self.executor}
        block = {**cell, **placement, "status": record["status"], "started_utc": attempts[0]["started_utc"],
                 "finished_utc": attempts[-1]["finished_utc"], "attempts": attempts}
        if record["result"] is not None:
            document = {**record["result"], "cell": block}
        else:
            document = {"schema": "infertool.sweep-cell/1", "env": record.get("env") or {}, "cell": block, "status": "failed", "error": attempts[-1]["error"]}
        write_text_atomic(self.output / "cells" / f"{cell['id']}.json", json.dumps(document, indent=2, default=str) + "\n", force=True)
        self.entries[cell["id"]] = {**block, "result": f"cells/{cell['id']}.json", "error": None if record["result"] is not None else attempts[-1]["error"]}
        where = f" on device {block['device_slot']}" if block["device_slot"] is not None else ""
        self.reporter.note(f"cell {cell['id']}: {record['status']}{where} after {len(attempts)} attempt(s)"
                           + (f": {attempts[-1]['error']}" if record["result"] is None else ""))
        self.advance()

    def fail(self, cell: Cell, error: str) -> None:
        now = environment.utc_now()
        self({**cell.to_dict()}, {"status": "failed", "result": None, "env": environment.fingerprint(),
                                  "attempts": [{"started_utc": now, "finished_utc": now, "seconds": 0, "exit_code": None, "error": error, "stderr_tail": None}]})


def _jobs(cells: list[Cell], spec: Spec, options: SweepOptions) -> dict[str, sweep_run.CellJob]:
    """Each cell's bench as a typed request: the spec's bench_args read once per set of shapes (a mistake
    in them stops the sweep before any cell runs), then the cell's own settings."""
    read: dict[tuple[str, ...], BenchOptions] = {}
    jobs = {}
    for cell in cells:
        if cell.shapes not in read:
            read[cell.shapes] = options.bench_options(spec.bench_args, cell.shapes)
            registry.check_groups([registry.get(name) for name in spec.backends], read[cell.shapes].runner, "which this sweep does not run")
        given = read[cell.shapes]
        runner = given.runner.only(registry.get(cell.backend).option_group)  # the options of the spec's other backends: not this cell's
        settings = replace(given, backends=(cell.backend,), batches=(cell.batch,), reference=cell.reference, model_labels=(cell.label,), force=False, runner=runner)
        jobs[cell.id] = sweep_run.CellJob(cell.to_dict(), cell.path, settings)
    return jobs


def _execute(todo: list[Cell], spec: Spec, options: SweepOptions, recorder: _Recorder, reporter: Reporter) -> list:
    """Quantize what the cells need, then run them; returns the device slots used."""
    jobs = _jobs(todo, spec, options)
    failures = _quantize(todo, spec, options, reporter)
    for cell in [c for c in todo if c.path in failures]:
        recorder.fail(cell, failures[cell.path])
    runnable = [jobs[c.id] for c in todo if c.path not in failures]
    if options.executor == "ray":
        if any(c.device is not None for c in todo):
            raise InfertoolError("the spec pins cells to devices, but Ray assigns GPUs itself", hint="drop 'devices:' from the spec, or use --executor local")
        sweep_run.run_ray(runnable, options.address, options.retries, options.timeout, recorder)
        return []
    slots, pci_order = _slots(options, todo, reporter)
    # CPU cells share one slot unless --devices asked for more: parallel CPU runs skew each other's timings
    sweep_run.run_local(runnable, slots, pci_order, options.devices is not None, options.retries, options.timeout, recorder)
    return slots


def sweep(spec_path: Path, options: SweepOptions, reporter: Reporter) -> SweepResult:
    """Run this shard's cells (or list them); raises CheckFailed (carrying the summary, which is
    written) when a cell failed after its retries."""
    if options.executor not in EXECUTORS:
        raise InfertoolError(f"unknown --executor '{options.executor}'", hint=f"choose from {', '.join(EXECUTORS)}")
    spec = load_spec(spec_path)
    cells = in_shard(expand(spec, options.output), options.shard)
    if not options.list_only:
        _check_output(spec, options)
        if options.executor == "ray":
            sweep_run.check_address(options.address)
    todo, skipped = _plan(cells, options)
    if options.shard is not None:
        reporter.note(f"shard {options.shard} (from {options.shard.source}): {len(cells)} cells")
    summary = {"path": str(spec.path), "sha256": spec.sha256}
    if options.list_only:
        folder = options.output / "cells"
        entries = [{**c.to_dict(), "status": "finished" if _finished(folder / f"{c.id}.json") else "to run"} for c in cells]
        return SweepResult(environment.fingerprint(), summary, _shard_text(options.shard), options.executor, (), tuple(entries), listed=True)
    with reporter.task(f"sweep: {len(todo)} cells ({len(skipped)} finished before)", total=len(todo)) as advance:
        recorder = _Recorder(options.output, reporter, advance, options.executor)
        slots = _execute(todo, spec, options, recorder, reporter) if todo else []
    entries = [{**c.to_dict(), "status": "skipped", "result": f"cells/{c.id}.json"} if c in skipped else recorder.entries[c.id] for c in cells]
    result = SweepResult(environment.fingerprint(), summary, _shard_text(options.shard), options.executor, tuple(slots), tuple(entries))
    write_text_atomic(options.output / summary_name(options.shard), json.dumps(result.to_dict(), indent=2, default=str) + "\n", force=True)
    failed = [e["id"] for e in entries if e["status"] == "failed"]
    if failed:
        raise CheckFailed(f"{len(failed)} of {len(cells)} cells failed: {', '.join(failed[:5])}{' ...' if len(failed) > 5 else ''}",
                          hint=f"their errors are in {options.output / 'cells'}; rerun with --resume to retry only them", result=result)
    return result


def _shard_text(shard: Shard | None) -> str | None:
    return None if shard is None else f"{shard} ({shard.source})"
