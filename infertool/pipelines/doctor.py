"""`doctor`: what is installed, what is missing and how to add it, and which backends can run."""

from __future__ import annotations

from infertool import environment
from infertool.backends import registry
from infertool.records.doctor import DoctorReport


def doctor() -> DoctorReport:
    fingerprint = environment.fingerprint()
    components = []
    for component in environment.packages():
        detail = ""
        if component.name == "onnxruntime" and component.version:
            detail = "providers: " + ", ".join(fingerprint["onnxruntime_providers"])
        components.append({**component.to_dict(), "detail": detail})
    return DoctorReport(
        fingerprint, tuple(components), tuple(b.to_dict() for b in registry.available()), tuple(environment.conflicts()),
    )
