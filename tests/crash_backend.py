"""A backend that kills its own process at the first inference, as the OOM killer or a crashing
runtime would: the planted crash of the sweep tests (registered through an entry point there)."""

import os
import signal

from infertool.backends import registry
from infertool.backends.base import Backend, Runner


class CrashRunner(Runner):
    def prepare(self) -> None:
        pass

    def infer(self, feeds):
        os.kill(os.getpid(), signal.SIGKILL)


class CrashBackend(Backend):
    name, description, extra = "crash", "kills its process at the first inference (a test's planted crash)", "cpu"

    def unavailable_reason(self):
        return None

    def open(self, artifact, options):
        return CrashRunner(artifact)


class Fp16CrashBackend(Backend):
    """ONNX Runtime's CPU provider, except that it dies opening a graph that stores fp16 weights (as
    ONNX Runtime 1.32 did on the fp16 ViT: a segfault in one of its graph transformers)."""

    name, description, extra = "crash-fp16", "ort-cpu, dying at session creation on fp16 graphs (a test's planted crash)", "cpu"

    def unavailable_reason(self):
        return None

    def open(self, artifact, options):
        import onnx

        if any(t.data_type == onnx.TensorProto.FLOAT16 for t in onnx.load(artifact).graph.initializer):
            os.kill(os.getpid(), signal.SIGSEGV)
        return registry.get("ort-cpu").open(artifact, options)


registry.register(CrashBackend())
registry.register(Fp16CrashBackend())
