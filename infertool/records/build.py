"""`infertool.build/1`: an engine, its sidecar and the precision stage."""

from __future__ import annotations

from dataclasses import dataclass, field

from infertool.records.bench import read_env
from infertool.records.fields import Damaged, Fields
from infertool.records.model_file import ModelFile

SCHEMA = "infertool.build/1"


@dataclass(frozen=True)
class BuildResult:
    engine: ModelFile
    sidecar: dict  # everything the .engine.json holds
    timing_cache_loaded: bool
    precision_report: dict | None  # the precision stage (graph, calibration, accuracy), when one ran
    seconds: float
    notes: tuple[str, ...] = ()
    env: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "schema": "infertool.build/1", "env": self.env, "engine": self.engine.to_dict(), "sidecar": self.sidecar,
            "timing_cache_loaded": self.timing_cache_loaded, "precision_stage": self.precision_report,
            "seconds": round(self.seconds, 3), "notes": list(self.notes),
        }

    @classmethod
    def read(cls, f: Fields) -> BuildResult:
        if f.data.get("schema") != SCHEMA:
            raise Damaged("schema", f"is {f.data.get('schema')!r}, not {SCHEMA}")
        sidecar = f.obj("sidecar")
        sidecar.text("precision", None)
        sidecar.text("tensorrt_version", None)
        sidecar.number("build_seconds", 0.0, 0.0)
        sidecar.integer("engine_bytes", 0)
        if sidecar.has("gpu"):
            sidecar.obj("gpu").text("name")
            sidecar.obj("gpu").text("compute_capability")
        return cls(
            ModelFile.read(f.obj("engine")), sidecar.data, f.flag("timing_cache_loaded", False), f.mapping("precision_stage", None),
            f.number("seconds", 0.0, 0.0), tuple(f.texts("notes", ())), read_env(f.obj("env", Fields({}, "env"))),
        )
