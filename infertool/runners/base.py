"""The runner protocol every backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from infertool.specs import TensorSpec

# timing modes, as the table and JSON name them
END_TO_END = "end_to_end"  # host arrays in, host arrays out (copies included)
DEVICE_RESIDENT = "device_resident"  # inputs and outputs stay on the device (IO binding / bound buffers)


class Runner(ABC):
    """prepare / infer / close, usable as a context manager.

    Device runners also keep inputs and outputs on the device (`bind` then `run_bound`), so the
    bench loop can time the runtime apart from host copies, and time device work with CUDA events.
    """

    name: str
    device_resident = False  # whether bind/run_bound avoid host copies

    def __init__(self, model: Path):
        self.model = model
        self.inputs: list[TensorSpec] = []
        self.outputs: list[TensorSpec] = []

    @abstractmethod
    def prepare(self) -> None:
        """Load the model; fills `inputs` and `outputs`."""

    @abstractmethod
    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One inference on host arrays, returning host arrays."""

    def bind(self, feeds: Mapping[str, np.ndarray]) -> None:
        """Stage inputs (and output buffers) for `run_bound`."""
        self._bound = dict(feeds)

    def run_bound(self) -> None:
        """One inference on the staged inputs; returns when the results are ready."""
        self._bound_outputs = self.infer(self._bound)

    def bound_outputs(self) -> dict[str, np.ndarray]:
        return self._bound_outputs

    def device_times(self, iterations: int) -> dict[str, list[int]]:
        """Per-iteration device times in ns from CUDA events, by phase; empty where not measurable."""
        return {}

    def memory(self) -> dict:
        """Runner-specific memory figures (engine size, device memory of the execution context...)."""
        return {}

    def describe(self) -> dict:
        """The settings that produced the numbers, for the JSON."""
        return {}

    def close(self) -> None:
        """Release the session, buffers and streams."""

    def __enter__(self) -> Runner:
        self.prepare()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
