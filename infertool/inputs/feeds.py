"""Choosing the feeds: a file read once, or generated data, at any batch size."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from infertool.dtypes import is_float
from infertool.errors import InfertoolError
from infertool.inputs.audio import AUDIO_PRESETS, AudioPreprocess
from infertool.inputs.batches import check_feeds, fit_batch, sample_count
from infertool.inputs.generated import IntRanges, generated_feeds
from infertool.inputs.images import PRESETS, ImagePreprocess
from infertool.inputs.reading import media_kind, read_tensor_file, sample_names
from infertool.tensors import TensorSpec, bind_unnamed, format_shape, resolve_shapes
from infertool.text import shorten


@dataclass(frozen=True)
class InputOptions:
    """Where inputs come from: a file (`path`), else generated `random` or `zeros` data."""

    path: Path | None = None
    generator: str = "random"
    shapes: Mapping[str | None, tuple[int, ...]] = field(default_factory=dict)
    seed: int = 0
    int_range: IntRanges = IntRanges()
    preprocess: ImagePreprocess = PRESETS["imagenet"]
    audio: AudioPreprocess = AUDIO_PRESETS["waveform"]
    media: str | None = None  # image | audio: the kind of file the preset named by the user is for

    def describe(self, dtypes: Mapping[str, str]) -> dict[str, str]:
        """What each input (name -> dtype) is fed, in words: the file, or the generated values."""
        if self.path is not None:
            return {name: f"{dtype} from {shorten(self.path.name, 60)}" for name, dtype in dtypes.items()}
        return {name: _generated_text(name, dtype, self) for name, dtype in dtypes.items()}

    def to_dict(self) -> dict:
        kind = media_kind(self.path) if self.path else None
        return {
            "path": str(self.path) if self.path else None, "generator": None if self.path else self.generator,
            "shapes": {k or "": list(v) for k, v in self.shapes.items()}, "seed": self.seed,
            "int_range": self.int_range.to_dict(), "preprocess": self.preprocess.to_dict() if self.path else None,
            "audio": self.audio.to_dict() if kind == "audio" else None,
        }


def _generated_text(name: str, dtype: str, options: InputOptions) -> str:
    if options.generator == "zeros":
        return f"{dtype} zeros"
    if is_float(dtype) or dtype.startswith("complex"):
        return f"{dtype} N(0, 1)"
    if dtype == "bool":
        return "bool coin flips"
    return options.int_range.describe(name, dtype)



class FeedSource:
    """Feeds for a model at any batch size; a file is read once."""

    def __init__(self, specs: list[TensorSpec], options: InputOptions):
        self.specs = specs
        self.options = options
        self.names = [s.name for s in specs]
        self.notes: list[str] = []  # what reading the file changed (resampled, mixed to mono, ...)
        self._file: dict[str, Any] | None = None
        if options.path is not None:
            kind = media_kind(options.path) if os.path.exists(options.path) else None  # os.path: False for a name too long
            if options.media and kind and kind != options.media:
                raise InfertoolError(f"--preprocess names an {options.media} preset, but {options.path} is {kind}", hint=f"drop --preprocess, or give {options.media} inputs")
            self._file = check_feeds(read_tensor_file(options.path, specs, options.preprocess, options.audio, self.notes), specs, str(options.path))
        self.shapes = bind_unnamed(options.shapes, self.names, "--input-shape")
        if self._file is not None:
            _check_given_shapes(self.shapes, self._file, options.path)

    def samples(self) -> list[str]:
        """The name of each sample of the file inputs (see `sample_names`)."""
        if self._file is None:
            return []
        return sample_names(self.options.path, sample_count(self._file))

    def feeds(self, batch: int | None) -> dict[str, np.ndarray]:
        if self._file is not None:
            return fit_batch(self._file, self.specs, batch) if batch else dict(self._file)
        shapes = resolve_shapes(self.specs, self.shapes, batch)
        dtypes = {s.name: s.dtype for s in self.specs}
        return generated_feeds(
            shapes, dtypes, self.options.seed, self.options.int_range, self.options.generator == "zeros", {s.name: s for s in self.specs},
        )


def _check_given_shapes(shapes: Mapping[str, tuple[int, ...]], found: Mapping[str, Any], path: Path) -> None:
    """--input-shape beside input files: the files' arrays are used as they are (batch aside), so a
    shape that disagrees with them would be silently ignored."""
    for name, shape in shapes.items():
        array = found.get(name)
        if isinstance(array, np.ndarray) and array.ndim and tuple(array.shape[1:]) != tuple(shape[1:]):
            raise InfertoolError(
                f"--input-shape {name}:{format_shape(shape)} disagrees with {name} {format_shape(array.shape)} read from {shorten(path)}",
                hint="the file's arrays are used as they are: drop --input-shape, or give inputs of that shape",
            )
