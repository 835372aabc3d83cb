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


registry.register(CrashBackend())
