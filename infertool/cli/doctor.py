"""`infertool doctor`: what is installed, what is missing and how to add it."""

from __future__ import annotations

from typing import Optional

import typer

from infertool.cli import options, render
from infertool.cli.console import emit_json, out


def doctor(json_out: Optional[str] = options.json_option, force: bool = options.force_option) -> None:
    """Versions of python, numpy, onnx, onnxruntime (+ providers), torch, TensorFlow/Keras, TensorRT, cuda-python; GPUs; which bench backends can run."""
    from infertool import environment, runners

    fingerprint = environment.fingerprint()
    components = []
    for component in environment.packages():
        detail = ""
        if component.name == "onnxruntime" and component.version:
            detail = "providers: " + ", ".join(fingerprint["onnxruntime_providers"])
        components.append({**component.to_dict(), "detail": detail})
    report = {
        "schema": "infertool.doctor/1", **fingerprint, "components": components,
        "backends": [b.to_dict() for b in runners.available()], "warnings": environment.conflicts(),
    }
    if json_out:
        emit_json(report, json_out, force)
    if json_out != "-":
        render.doctor_report(report, out)


def register(app: typer.Typer) -> None:
    app.command()(doctor)
