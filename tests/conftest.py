import os
import subprocess
import sys
from pathlib import Path

import inprocess
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


def run_main(*args: str, cwd: Path | None = None, env: dict | None = None, imports: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """The command line in this process, as `run_cli` would run it (no interpreter or import start-up):
    exit code, and stdout and stderr caught at the file descriptors (native libraries' lines too);
    `env` set for the call, its PYTHONPATH's modules (tests/fakes) imported fresh in place of the
    installed ones; `imports` (say a test backend) imported first. What the run changed is put back."""
    from infertool.cli.app import main

    with inprocess.isolated(env or {}, imports), inprocess.captured() as streams:
        code = inprocess.exit_code(main, [str(a) for a in args], cwd or ROOT)
    return subprocess.CompletedProcess(args, code, *streams)


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


@pytest.fixture(scope="session")
def cnn_onnx(tmp_path_factory) -> Path:
    """tests/models.py:cnn converted as a user would (a dynamic batch), once a session: read it, never change it."""
    path = tmp_path_factory.mktemp("cnn") / "cnn.onnx"
    result = run_main("convert", f"{MODELS}:cnn", "--input-shape", "1x3x16x16", "-o", path, "--quiet")
    assert result.returncode == 0, result.stderr
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(123)


@pytest.fixture
def crash_plugin(tmp_path):
    """tests/crash_backend.py as an installed plug-in: backends `crash` (killed at the first inference)
    and `crash-fp16` (a segfault opening an fp16 graph); the environment that finds it."""
    info = tmp_path / "site" / "crash_plugin-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: crash-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[infertool.backends]\ncrash = crash_backend\n")
    return {"PYTHONPATH": f"{tmp_path / 'site'}:{ROOT / 'tests'}"}
