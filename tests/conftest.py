import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "tests" / "models.py"


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """The real command line, in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "infertool", *map(str, args)],
        capture_output=True, text=True, cwd=cwd or ROOT, env={**os.environ, **(env or {})}, timeout=600,
    )


def run_main(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The command line in this process (cheap: no interpreter or import start-up), with its
    exit code, stdout and stderr, from `cwd`."""
    from infertool.cli.app import main

    out, err, previous = io.StringIO(), io.StringIO(), os.getcwd()
    code = 0
    os.chdir(cwd or ROOT)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main([str(a) for a in args])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    finally:
        os.chdir(previous)
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


cli = run_main  # the name the type and verdict tests use


def ort_run(path: Path, feeds: dict) -> dict:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds)))


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The error line, checking the CLI printed no traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(123)
