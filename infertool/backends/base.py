"""What every backend is: a `Backend` (availability, capabilities, prepare, open) and the
`Runner` it opens. One file per backend family registers its backends (see registry.py)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from infertool.errors import BackendFailure, InfertoolError

if TYPE_CHECKING:
    import numpy as np

    from infertool.engine.build import BuildOptions, StageReview
    from infertool.onnx_io import ModelInfo
    from infertool.records.build import BuildResult
    from infertool.reporting import Reporter
    from infertool.tensors import TensorSpec

# timing modes, as the table and JSON name them
END_TO_END = "end_to_end"  # host arrays in, host arrays out (copies included)
DEVICE_RESIDENT = "device_resident"  # inputs and outputs stay on the device (IO binding / bound buffers)


def option(
    flag: str, help: str, default: object = None, *, metavar: str | None = None, choices: tuple[str, ...] = (), low: int | None = None,
    high: int | None = None, short: str | None = None, commands: tuple[str, ...] = ("bench",), text: str | None = None, file: str | None = None,
    default_factory: Callable[[], object] | None = None, readers: tuple[str, ...] = (),
) -> Any:
    """A field of a backend's option group (`Backend.option_group`): the flag (and `short` one) and help the CLI gives it
    on `commands`, the choices or integer range it accepts (the CLI refuses others before any work starts). `text` names
    how the CLI reads the value from text where it is not the field's type (`cli/backend_options.TEXTS`: "size",
    "pairs"); `file` says the value names a file the command reads ("in") or writes ("out"), checked as every other;
    `readers` names the backends of the group's family that use it, where not all do (a command using none refuses it)."""
    metadata = {"flag": flag, "short": short, "help": help, "metavar": metavar, "choices": choices, "min": low, "max": high,
                "commands": commands, "text": text, "file": file, "readers": readers}
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def option_default(item: Field) -> object:
    """An option group field's default value."""
    return item.default_factory() if item.default is MISSING else item.default  # type: ignore[misc]


Group = TypeVar("Group")


@dataclass(frozen=True)
class RunnerOptions:
    """Everything a backend may read; each reads the groups that concern it."""

    device: int = 0  # CUDA device index
    io_binding: bool = True  # GPU backends: also time device-resident inputs and outputs
    cuda_graph: bool = False  # capture and replay a CUDA graph where the backend can
    timeout: float | None = None  # seconds one inference may run before the runtime is told to stop it
    profile: bool = False  # record per-op / per-layer times (Runner.profile); costs speed, so timed runs keep it off
    groups: Mapping[str, Any] = field(default_factory=dict)  # backends' own option groups, by `key`

    def group(self, kind: type[Group]) -> Group:
        """A backend's own option group as given, else its defaults."""
        return self.groups.get(kind.key) or kind()  # type: ignore[attr-defined]

    def with_group(self, value: object) -> RunnerOptions:
        """These options with this group in place; a group at its defaults is not held (as the CLI gives none)."""
        key = type(value).key  # type: ignore[attr-defined]
        groups = {k: v for k, v in self.groups.items() if k != key}
        return replace(self, groups=groups if value == type(value)() else {**groups, key: value})

    def only(self, kind: type | None) -> RunnerOptions:
        """These options with only this group (one backend's, None: none): what a bench of that backend alone takes."""
        return replace(self, groups={k: v for k, v in self.groups.items() if kind is not None and k == kind.key})  # type: ignore[attr-defined]

    def changed(self, kind: type, **changes: object) -> RunnerOptions:
        """These options with fields of one group changed (a `bench --tune` choice)."""
        return self.with_group(replace(self.group(kind), **changes))


@dataclass(frozen=True)
class Capabilities:
    on_gpu: bool = False
    device_resident: bool = False  # can keep inputs and outputs on the device while timed
    cuda_graphs: bool = False  # can capture and replay CUDA graphs (needs device_resident)
    builds_engines: bool = False  # prepare() turns the ONNX into an engine first
    runs_engines: bool = False  # opens serialized engine files (.engine) as well
    saves_optimized: bool = False  # can write the graph it optimized (bench --save-optimized)
    reduced_floats: bool = True  # computes fp16 / bf16 graphs in those types (ORT's CPU provider runs most of their ops in fp32)
    debug_tensors: bool = False  # returns intermediate tensors without making them graph outputs (TensorRT debug tensors)
    profiles: bool = False  # can report per-op / per-layer times (bench --profile)
    precision_graphs: tuple[str, ...] = ()  # vocabulary.PRECISION_GRAPHS it runs faster than fp32, where any: what optimize tries


@dataclass(frozen=True)
class RunnerInfo:
    """What produced the numbers: the settings in effect, for the JSON."""

    precision: str | None = None  # what the runtime computes in, where it may differ from the graph's
    settings: Mapping[str, object] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


class RowFailed(BackendFailure):
    """This row cannot be measured (say, torch.compile failed on the model); the other rows can."""


@dataclass(frozen=True)
class GraphStep:
    """A graph a backend makes from the model for `bench --tune` to try (ONNX Runtime's transformer fusions)."""

    name: str  # the graph's name in the report and in cache file names
    make: Callable[[Path, Path], None]  # (the model, the graph to write)
    command: tuple[str, ...]  # the command line making the same graph, with {model} and {output} in place


@dataclass(frozen=True)
class Choice:
    """One alternative `bench --tune` tries: a change of options, or a precision graph in place of the model.

    `expect` names the settings the opened runner must read back (`RunnerInfo.settings`, dotted keys)
    for the change to count as in effect; a choice the current configuration already satisfies is skipped.
    """

    label: str
    apply: Callable[[RunnerOptions], RunnerOptions] | None = None
    expect: Mapping[str, object] = field(default_factory=dict)
    graph: str | None = None  # a name from vocabulary.TUNE_GRAPHS
    needs: Callable[[RunnerOptions], bool] | None = None  # applies only where this holds
    step: GraphStep | None = None  # a graph the backend makes from the model (its name in `graph`)


@dataclass(frozen=True)
class Dimension:
    """A setting `bench --tune` searches: the alternatives to try against the current configuration."""

    name: str
    choices: tuple[Choice, ...]


class Runner(ABC):
    """prepare / infer / close, usable as a context manager.

    Device runners also keep inputs and outputs on the device (`bind` then `run_bound`), so the
    bench loop can time the runtime apart from host copies, and time device work with CUDA events.
    """

    device_resident = False  # whether bind/run_bound avoid host copies

    def __init__(self, model: Path):
        self.model = model
        self.inputs: list[TensorSpec] = []
        self.outputs: list[TensorSpec] = []
        self._bound: Mapping[str, np.ndarray] = {}
        self._bound_outputs: dict[str, np.ndarray] = {}

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

    def intermediates(self) -> dict[str, np.ndarray]:
        """The debug tensors the last `infer` produced, by engine tensor name (capabilities.debug_tensors)."""
        return {}

    def memory(self) -> dict:
        """Runner-specific memory figures (engine size, device memory of the execution context...)."""
        return {}

    def profile(self) -> tuple[str, list[tuple[str, str, float]]]:
        """The clock ("device" or "host") and (node or layer, op type, ms) per op execution recorded since
        `prepare`, where the runner was opened with `RunnerOptions.profile`; no events where it cannot profile."""
        return "host", []

    def info(self) -> RunnerInfo:
        """The settings that produced the numbers."""
        return RunnerInfo()

    def close(self) -> None:
        """Release the session, buffers and streams."""

    def __enter__(self) -> Runner:
        self.prepare()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Backend(ABC):
    """A runtime infertool can run a model on. Subclasses set the class attributes and register
    an instance with `registry.register`."""

    name: ClassVar[str]
    description: ClassVar[str]
    extra: ClassVar[str]  # the pip extra that installs what it needs
    capabilities: ClassVar[Capabilities] = Capabilities()
    # its own options: a frozen dataclass with ClassVars `key` (its name in RunnerOptions.groups) and `title`
    # (the --help heading), its fields made with `option`; the CLI adds them to bench (`options.group(kind)` reads them)
    option_group: ClassVar[type | None] = None
    # the RunnerInfo.settings a regression gate must find equal in a baseline row before it compares the two
    gate_settings: ClassVar[tuple[str, ...]] = ()
    # the way out when the runtime kills its process on a model (a segfault at session creation, say)
    crash_advice: ClassVar[str] = "the runtime crashed on this model, not infertool: try another backend (-b)"

    @abstractmethod
    def unavailable_reason(self) -> str | None:
        """Why it cannot run here (naming what to install), or None. Must not raise for a missing package."""

    def check(self, model: ModelInfo, options: RunnerOptions) -> None:
        """Refuse options this backend cannot work with, before any row of any backend is measured (say, a missing --source)."""

    def tuning_space(self, model: ModelInfo, options: RunnerOptions) -> tuple[Dimension, ...]:
        """What `bench --tune` searches for this backend, most effective first; nothing by default."""
        return ()

    def prepare(self, model: ModelInfo, options: RunnerOptions, shapes: Mapping[str, tuple[int, ...]], reporter: Reporter) -> Path:
        """The file `open` runs for this model at these input shapes: the ONNX itself by default;
        an engine built (or found in the cache) for engine backends."""
        return model.path

    @abstractmethod
    def open(self, artifact: Path, options: RunnerOptions) -> Runner:
        """A runner over `artifact`, not yet prepared: use it as a context manager."""

    def save_optimized(self, model: Path, options: RunnerOptions, path: Path, force: bool) -> None:
        """Write the graph this backend optimized (capabilities.saves_optimized)."""
        raise InfertoolError(f"backend {self.name} cannot save an optimized graph", hint="use an ort-* backend")

    def check_builder(self) -> None:
        """Raise (naming the extra) where the engine builder cannot load (capabilities.builds_engines).
        Building may need less than running: no GPU, for an ahead-of-time builder."""
        raise InfertoolError(f"backend {self.name} does not build engines", hint="choose one that does (infertool doctor lists the backends)")

    def build_engine(self, model: ModelInfo, output: Path, options: BuildOptions, reporter: Reporter, review: StageReview | None = None) -> BuildResult:
        """Build an engine file (+ sidecar) for `build-engine` (capabilities.builds_engines)."""
        self.check_builder()
        raise NotImplementedError

    def claims(self, path: Path) -> bool:
        """Whether this backend's library built this engine file (capabilities.runs_engines)."""
        return False
