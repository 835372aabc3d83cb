"""Engines built for `bench`/`run` on an ONNX model, cached by everything that changes the engine."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

from infertool import cuda
from infertool.engine import sidecar as sidecars
from infertool.engine.build import BuildOptions, build_engine
from infertool.files import cache_root
from infertool.onnx_io import ModelInfo
from infertool.reporting import Reporter


def cache_dir(override: Path | None = None) -> Path:
    if override is not None:
        return override
    return cache_root() / "engines"


def engine_for(model: ModelInfo, options: BuildOptions, directory: Path | None, reporter: Reporter) -> Path:
    """The cached engine for this ONNX, precision, profiles, TensorRT flavour and version, and GPU
    (TensorRT-RTX: compute-capability targets); built if missing."""
    folder = cache_dir(directory)
    flavour = options.flavour
    settings = {k: v for k, v in options.to_dict().items() if k != "timing_cache"}
    key = {
        "onnx_sha256": model.sha256, "flavour": flavour.name, "tensorrt": flavour.version(),
        "gpu": None if flavour.ahead_of_time else cuda.gpu_identity(options.device), "options": settings,
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = folder / f"{model.path.stem}-{options.precision}-{digest}.engine"
    if path.is_file() and sidecars.read(path) is not None:
        reporter.note(f"reusing the cached engine {path}")
        return path
    timing = None if flavour.ahead_of_time else options.timing_cache or folder / "timing.cache"
    build_engine(model, path, replace(options, force=True, timing_cache=timing), reporter)
    return path
