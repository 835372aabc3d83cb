"""Accuracy against ground truth: a labels CSV (sample -> class index) and the top-1 / top-5 accuracy
of a classifier output on the labelled samples."""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from infertool.dtypes import from_numpy, is_float, widened
from infertool.errors import InfertoolError, first_line
from infertool.files import read_bytes
from infertool.records.bench import TaskAccuracy

LABELS_LIMIT = 256 * 2**20  # bytes of a labels CSV
SAMPLES_HINT = "name samples by file name (a.png) or stem (a) of the inputs folder, or by row index (0, 1, ...) of array inputs"


@dataclass(frozen=True)
class GroundTruth:
    path: Path
    classes: Mapping[str, int]  # sample name -> class index


def _rows(path: Path) -> list[list[str]]:
    data = read_bytes(path, "labels", LABELS_LIMIT, hint="give a CSV file of sample,class lines")  # a regular file: never a FIFO
    try:
        lines = data.decode("utf-8").splitlines()
        return [[c.strip() for c in row] for row in csv.reader(lines) if row and any(c.strip() for c in row) and not row[0].startswith("#")]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InfertoolError(f"cannot read labels {path}: {first_line(exc)}", hint="give a CSV file of sample,class lines") from exc


def read_labels_csv(path: Path) -> GroundTruth:
    """`sample,class` lines (an optional header line, `#` comments); the class is an index."""
    rows = _rows(path)
    if rows and len(rows[0]) >= 2 and not rows[0][1].lstrip("-").isdigit():
        rows = rows[1:]  # a header
    if not rows:
        raise InfertoolError(f"labels {path} has no sample,class lines", hint="write one line per sample, e.g. crop_001.png,1")
    classes: dict[str, int] = {}
    for number, row in enumerate(rows, 1):
        if len(row) < 2 or not row[1].isdigit():
            raise InfertoolError(f"labels {path}, line {number}: {','.join(row)!r} is not sample,class", hint="the class is a class index (0, 1, ...)")
        if classes.setdefault(row[0], int(row[1])) != int(row[1]):
            raise InfertoolError(f"labels {path}: sample {row[0]} is labelled both {classes[row[0]]} and {row[1]}")
    return GroundTruth(path, classes)


def classes_for(truth: GroundTruth, samples: list[str], source: str) -> np.ndarray:
    """The class of each sample (-1: unlabelled); every labelled sample must be among `samples`."""
    matched, found = set(), []
    for sample in samples:
        key = sample if sample in truth.classes else Path(sample).stem if Path(sample).stem in truth.classes else None
        matched.add(key)
        found.append(-1 if key is None else truth.classes[key])
    missing = [name for name in truth.classes if name not in matched]
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise InfertoolError(f"{truth.path} names {len(missing)} sample{'s' if len(missing) > 1 else ''} not in {source}: {shown}", hint=SAMPLES_HINT)
    return np.asarray(found, dtype=np.int64)


def classifier_output(outputs: Mapping[str, object]) -> tuple[str, np.ndarray] | None:
    """The first float output shaped [batch, classes] (trailing 1s ignored), as [batch, classes]
    (types numpy lacks, bfloat16 or float8, widened)."""
    for name, array in outputs.items():
        if not isinstance(array, np.ndarray) or not is_float(from_numpy(array.dtype)):
            continue
        if array.ndim >= 2 and all(d == 1 for d in array.shape[2:]) and array.shape[1] > 1:
            return name, widened(array).reshape(array.shape[:2])
    return None


def _scores(outputs: Mapping[str, np.ndarray]) -> tuple[str, np.ndarray]:
    found = classifier_output(outputs)
    if found is None:
        raise InfertoolError("--labels-csv needs a classifier output shaped [batch, classes]", hint="drop --labels-csv for this model")
    return found


def task_accuracy(outputs: Mapping[str, np.ndarray], classes: np.ndarray, truth: GroundTruth) -> TaskAccuracy:
    """Top-1 (arg-max is the true class) and top-5 (fewer than 5 classes score above it, so ties
    count for the true class) over the labelled samples."""
    name, scores = _scores(outputs)
    labelled = classes >= 0
    wrong = classes[classes >= scores.shape[1]]
    if wrong.size:
        raise InfertoolError(f"{truth.path} has class {wrong[0]}, but output '{name}' has {scores.shape[1]} classes", hint="classes are indices 0..N-1 of the output")
    scores, truth_classes = scores[labelled].astype(np.float64), classes[labelled]
    true_scores = scores[np.arange(len(scores)), truth_classes]
    above = (scores > true_scores[:, None]).sum(axis=1)
    top5 = float(np.mean(above < 5)) if scores.shape[1] >= 5 else None
    return TaskAccuracy(str(truth.path), name, int(labelled.sum()), float(np.mean(scores.argmax(axis=1) == truth_classes)), top5)


@dataclass(frozen=True)
class LabelledSet:
    """Every sample of the inputs with its class, run through a model in batches of one size."""

    feeds: Mapping[str, np.ndarray]
    classes: np.ndarray
    truth: GroundTruth

    def evaluate(self, infer: Callable[[dict], dict], batch: int) -> TaskAccuracy:
        count, name, scores = len(self.classes), "", []
        for start in range(0, count, batch):
            rows = np.arange(start, start + batch) % count  # the last batch is filled up with the first samples
            name, batch_scores = _scores(infer({n: a[rows] if a.ndim and a.shape[0] == count else a for n, a in self.feeds.items()}))
            scores.append(batch_scores[: min(batch, count - start)])
        return task_accuracy({name: np.concatenate(scores)}, self.classes, self.truth)
