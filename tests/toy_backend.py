"""A whole backend in one file: onnx's pure-Python reference evaluator, with an option of its own
(docs/architecture.md shows it)."""

from dataclasses import dataclass
from typing import ClassVar

from infertool.backends import registry
from infertool.backends.base import Backend, Runner, option


@dataclass(frozen=True)
class ReferenceOptions:
    key: ClassVar[str] = "onnx-reference"  # its name in RunnerOptions.groups
    title: ClassVar[str] = "onnx-reference backend"  # its heading in bench --help and run --help
    verbose: int = option("--ref-verbose", "Evaluator verbosity.", 0, low=0, high=4, commands=("bench", "run"))


class ReferenceRunner(Runner):
    def __init__(self, model, verbose=0):
        super().__init__(model)
        self.verbose = verbose

    def prepare(self) -> None:
        from onnx.reference import ReferenceEvaluator

        from infertool import onnx_io

        proto = onnx_io.load(self.model)
        self.session = ReferenceEvaluator(proto, verbose=self.verbose)
        self.inputs, self.outputs = onnx_io.input_specs(proto), onnx_io.output_specs(proto)

    def infer(self, feeds):
        return dict(zip([o.name for o in self.outputs], self.session.run(None, dict(feeds))))


class ReferenceBackend(Backend):
    name, description, extra = "onnx-reference", "onnx's reference evaluator (pure Python)", "cpu"
    option_group = ReferenceOptions

    def unavailable_reason(self):
        return None

    def open(self, artifact, options):
        return ReferenceRunner(artifact, options.group(ReferenceOptions).verbose)


registry.register(ReferenceBackend())
