"""A whole backend in one file: onnx's pure-Python reference evaluator (docs/architecture.md shows it)."""

from infertool import onnx_io
from infertool.backends import registry
from infertool.backends.base import Backend, Runner


class ReferenceRunner(Runner):
    def prepare(self) -> None:
        from onnx.reference import ReferenceEvaluator

        proto = onnx_io.load(self.model)
        self.session = ReferenceEvaluator(proto)
        self.inputs, self.outputs = onnx_io.input_specs(proto), onnx_io.output_specs(proto)

    def infer(self, feeds):
        return dict(zip([o.name for o in self.outputs], self.session.run(None, dict(feeds))))


class ReferenceBackend(Backend):
    name, description, extra = "onnx-reference", "onnx's reference evaluator (pure Python)", "cpu"

    def unavailable_reason(self):
        return None

    def open(self, artifact, options):
        return ReferenceRunner(artifact)


registry.register(ReferenceBackend())
