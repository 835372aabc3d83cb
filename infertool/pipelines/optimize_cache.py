"""optimize's cache: the candidates it made and judged, kept per model contents and settings, so that
`optimize --resume` makes and judges again only what it has not (timings are never reused: they are
measured again on the machine as it is now).

One folder per key (the model's sha256, quantize's settings, the calibration and evaluation data and
their contents, the ground truth's contents, the budget): each candidate's graph (`NAME.onnx`, as
quantize wrote it) and its record (`NAME.json`, a `records/optimize.Candidate` without runs), written
when it was judged and again when its rescue was decided.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from infertool.files import cache_root, file_sha256, write_bytes_atomic
from infertool.pipelines.quantize import QuantizeOptions
from infertool.pipelines.tune import data_sha256
from infertool.records.fields import Damaged, Fields
from infertool.records.optimize import AccuracyBudget, Candidate


def key(model_sha256: str, conversion: QuantizeOptions, budget: AccuracyBudget) -> str:
    """What decides whether a cached candidate holds for this run."""
    data = {name: getattr(conversion, name) for name in ("calib", "eval", "generated")}
    described = {name: None if d is None else [d.to_dict(), data_sha256(d)] for name, d in data.items()}
    labels = conversion.labels
    settings = [
        model_sha256, conversion.to_dict(), described, conversion.eval_samples, budget.to_dict(),
        file_sha256(labels) if labels is not None and labels.is_file() else None,
    ]
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:20]


class Cache:
    """The folder of one key: where candidates are made, and found again with --resume."""

    def __init__(self, folder: Path, resume: bool):
        self.folder, self.resume = folder, resume
        folder.mkdir(parents=True, exist_ok=True)

    @classmethod
    def of(cls, model_sha256: str, conversion: QuantizeOptions, budget: AccuracyBudget, resume: bool) -> Cache:
        return cls(cache_root() / "optimize" / key(model_sha256, conversion, budget), resume)

    def graph(self, label: str) -> Path:
        return self.folder / f"{label}.onnx"

    def get(self, label: str) -> Candidate | None:
        """The candidate judged before (with --resume), where its record reads and its graph is the one judged."""
        record = self.folder / f"{label}.json"
        if not self.resume or not record.is_file():
            return None
        try:
            candidate = Candidate.read(Fields(json.loads(record.read_text()), str(record)))
        except (ValueError, Damaged):  # a damaged record: made again
            return None
        made = candidate.model
        if made is not None and (not Path(made.path).is_file() or file_sha256(Path(made.path)) != made.sha256):
            return None
        return candidate

    def put(self, candidate: Candidate) -> None:
        if candidate.model is not None or candidate.rejected.startswith("could not convert"):
            data = {**candidate.to_dict(), "runs": []}
            write_bytes_atomic(self.folder / f"{candidate.name}.json", json.dumps(data, indent=1).encode(), force=True)
