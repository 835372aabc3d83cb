"""`infertool doctor`: what is installed, what is missing and how to add it."""

from __future__ import annotations

import typer

from infertool.cli.console import show
from infertool.cli.groups import Output, command
from infertool.cli.show.doctor import doctor_report


@command
def doctor(output: Output = None) -> None:
    """Versions of python, numpy, onnx, onnxruntime (+ providers), torch, TensorFlow/Keras, TensorRT, cuda-python; GPUs; which bench backends can run."""
    from infertool.pipelines.doctor import doctor as diagnose

    show(diagnose(), output.json_out, output.force, doctor_report)


def register(app: typer.Typer) -> None:
    app.command()(doctor)
