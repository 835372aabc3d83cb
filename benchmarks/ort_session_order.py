"""Whether ONNX Runtime's CUDA EP runs a process's later sessions slower than its first: three sessions of
the same model one after the other (prefer_nhwc, CUDA graph, IO binding on the device), plain ONNX Runtime,
with ORT's own stream (none) or a stream made for it (user, as infertool does). Prints each session's median.

    python benchmarks/ort_session_order.py resnet50.fp16.onnx none    # results/gpu/perf/check/ort_session_order.txt
"""

import functools
import gc
import statistics
import sys

import numpy as np
import onnxruntime as ort
from harness_fidelity import bare_loop

from infertool import cuda

model, mode = sys.argv[1], sys.argv[2]  # mode: none | user


def one(label):
    po = {"prefer_nhwc": "1", "enable_cuda_graph": "1"}
    stream = None
    if mode == "user":
        stream = cuda.Stream()
        po.update(user_compute_stream=str(stream.ptr), has_user_compute_stream="1")
    s = ort.InferenceSession(model, providers=[("CUDAExecutionProvider", po)])
    x = ort.OrtValue.ortvalue_from_numpy(np.random.rand(1, 3, 224, 224).astype(np.float32), "cuda", 0)
    y = ort.OrtValue.ortvalue_from_shape_and_type([1, 1000], np.float32, "cuda", 0)
    b = s.io_binding()
    b.bind_ortvalue_input("image", x)
    b.bind_ortvalue_output("output", y)
    call = functools.partial(s.run_with_iobinding, b)
    for _ in range(300):
        call()
    meds = [bare_loop(call, 500) for _ in range(5)]  # per-round medians, ms
    print(f"{mode} stream, {label}: {statistics.median(meds):.4f} ms", flush=True)
    del call, b, s, x, y
    gc.collect()
    if stream is not None:
        stream.close()


for i in range(3):
    one(f"session {i + 1}")
