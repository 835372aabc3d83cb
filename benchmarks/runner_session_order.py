"""The same question through infertool's ORT runner: sessions of ResNet-50 fp16 batch 1 one after the other in
one process, in several configurations, each timed on run_bound and on CUDA events.

    python benchmarks/runner_session_order.py resnet50.fp16.onnx    # results/gpu/perf/check/runner_session_order.txt
"""

import gc
import statistics
import sys

import onnxruntime as ort
from harness_fidelity import bare_loop

from infertool.backends import registry
from infertool.backends.base import RunnerOptions
from infertool.backends.onnxruntime import OrtOptions
from infertool.inputs.feeds import FeedSource, InputOptions

model = sys.argv[1]


def measure(label, graph=True, po=None, keep=False):
    po = {"prefer_nhwc": "1"} if po is None else po
    r = registry.get("ort-cuda").open(model, RunnerOptions(cuda_graph=graph).with_group(OrtOptions(provider_options=po)))
    r.prepare()
    r.bind(FeedSource(r.inputs, InputOptions()).feeds(1))
    for _ in range(300):
        r.run_bound()
    meds = [bare_loop(r.run_bound, 500) for _ in range(5)]  # per-round medians, ms
    ev = r.device_times(300)
    ev = {k: round(statistics.median(v) / 1e6, 4) for k, v in ev.items()}
    sessions = sum(isinstance(o, ort.InferenceSession) for o in gc.get_objects())
    print(f"{label}: run_bound {statistics.median(meds):.4f} ms, events {ev}, live sessions {sessions}", flush=True)
    if not keep:
        r.close()
    return r


measure("A graph+nhwc first")
measure("A2 graph+nhwc second")
measure("H nhwc, no graph", graph=False)
measure("A3 graph+nhwc after an nhwc session without graph")
measure("B defaults (no graph, nchw)", graph=False, po={})
measure("C graph+nhwc after nchw")
measure("K graph, nchw", po={})
