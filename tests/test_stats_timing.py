import itertools
import subprocess
import sys
import time
from dataclasses import replace

import pytest

from infertool.backends import onnxruntime as ort_backends
from infertool.backends.base import RunnerOptions
from infertool.backends.onnxruntime import OrtCpu
from infertool.cli.parse import regression as parse_regression
from infertool.cli.parse import warmup as parse_warmup
from infertool.errors import InfertoolError
from infertool.measure.timing import Budget, run_for
from infertool.stats import Stats, nearest_rank, throughput

from onnx_models import mlp


def test_nearest_rank_percentiles():
    ordered = list(range(1, 101))  # 1..100
    assert nearest_rank(ordered, 50) == 50
    assert nearest_rank(ordered, 90) == 90
    assert nearest_rank(ordered, 99) == 99
    assert nearest_rank(ordered, 100) == 100
    assert nearest_rank([5.0], 99) == 5.0
    assert nearest_rank([1, 2, 3, 4], 50) == 2  # nearest rank, not interpolation


def test_stats_from_ns():
    stats = Stats.from_ns([1_000_000, 2_000_000, 3_000_000, 4_000_000])
    assert (stats.min, stats.median, stats.max, stats.mean) == (1.0, 2.0, 4.0, 2.5)
    assert stats.std == pytest.approx(1.290994, rel=1e-5)  # sample std
    assert stats.cv == pytest.approx(stats.std / 2.5)
    assert stats.noisy
    assert throughput(stats, batch=8) == {"inferences_per_s": 400.0, "samples_per_s": 3200.0}


def test_budget_runs_until_both_count_and_time():
    samples = run_for(lambda: None, Budget(50, 0.0))
    assert len(samples) == 50
    started = time.perf_counter()
    samples = run_for(lambda: time.sleep(0.001), Budget(3, 0.05))
    assert len(samples) >= 3 and time.perf_counter() - started >= 0.05
    assert all(s >= 1_000_000 for s in samples)


def test_warmup_parsing():
    assert parse_warmup("10") == Budget(10, 0.0)
    assert parse_warmup("200ms") == Budget(3, 0.2)
    assert parse_warmup("2s") == Budget(3, 2.0)
    with pytest.raises(InfertoolError):
        parse_warmup("ten")


def test_regression_parsing():
    assert parse_regression("10%") == pytest.approx(0.1)
    assert parse_regression("2.5%") == pytest.approx(0.025)
    with pytest.raises(InfertoolError, match="ambiguous"):  # 2.5 % or 250 %? the sign says
        parse_regression("2.5")
    with pytest.raises(InfertoolError):
        parse_regression("fast")


def test_a_bound_onnx_runtime_call_raises_nothing_inside_the_wrapper(tmp_path):
    """ONNX Runtime's Python wrapper looks `gpu_graph_id` up in the run options on every IO-binding run; where it
    is missing a RuntimeError is raised and caught each time: +45 µs a call on this CPU, +70 µs (18 %) on ResNet-50
    fp16 batch 1 with a CUDA graph on an H100. The runners' run options carry its default. Traced in a fresh
    process: sys.settrace in the test process, after hundreds of in-process commands, once never returned."""
    code = f"""
import sys
import numpy as np
import onnxruntime as ort
from infertool.backends.onnxruntime import run_options
session = ort.InferenceSession({str(mlp(tmp_path / "mlp.onnx"))!r}, providers=["CPUExecutionProvider"])
binding = session.io_binding()
binding.bind_cpu_input("x", np.zeros((1, 16), np.float32))
binding.bind_output("y")
raised = []
def trace(frame, event, arg):
    if event == "exception":
        raised.append(f"{{arg[0].__name__}} in {{frame.f_code.co_name}}")
    return trace
options = run_options()
sys.settrace(trace)
try:
    session.run_with_iobinding(binding, options)
finally:
    sys.settrace(None)
assert raised == [], raised
assert options.get_run_config_entry("gpu_graph_id") == "0"  # the CUDA EP's default graph, as when unset
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


class FakeGpuOrt(OrtCpu):
    """A fake: ort-cpu declared a GPU backend, as the CUDA EP cannot run here."""

    name = "fake-gpu-ort"
    capabilities = replace(OrtCpu.capabilities, on_gpu=True)

    def provider_chain(self, options, stream):
        return [("CPUExecutionProvider", {})]


def test_later_gpu_sessions_of_a_process_are_flagged(tmp_path, monkeypatch):
    """ORT's CUDA EP ran every session after a process's first one slower (H100, ResNet-50 fp16 batch 1 with a CUDA
    graph: 0.38 -> 0.43 ms, pure ONNX Runtime too), so a row measured on a later GPU session says so; CPU ones do not."""
    monkeypatch.setattr(ort_backends, "_gpu_sessions", itertools.count())
    model = mlp(tmp_path / "mlp.onnx")
    found = []
    for backend in (FakeGpuOrt(), OrtCpu(), FakeGpuOrt(), FakeGpuOrt()):
        with backend.open(model, RunnerOptions()) as runner:
            found.append(runner.info().warnings)
    assert found == [(), (), (ort_backends.LATER_SESSION,), (ort_backends.LATER_SESSION,)]
