"""Harness fidelity: infertool's measured median against a bare loop on the same session.

Alternates rounds (bare, infertool, bare, ...) so drift hits both alike, and compares the
median of the per-round medians. The bare loop is written out here, independent of infertool's
timing code; infertool's side is the bench loop itself (`run_for` + `Stats`).

    python benchmarks/harness_fidelity.py MODEL.onnx --backend ort-cpu --batch 8 -o result.json
    python benchmarks/harness_fidelity.py resnet50.fp16.onnx --backend ort-cuda --cuda-graph --provider-option prefer_nhwc=1 --batch 1 -o r.json
    python benchmarks/harness_fidelity.py resnet50.fp16.onnx --backend torch-compile --source benchmarks/models.py:resnet50 --batch 1 -o r.json

For the framework backends the bare loop calls the module infertool built (eager, or torch.compile's)
on the same device tensors itself: `module(*inputs)` under torch.inference_mode, then a synchronize.
"""

import argparse
import json
import statistics
import time
from pathlib import Path

from infertool import environment
from infertool.backends import registry
from infertool.backends.base import RunnerOptions
from infertool.backends.onnxruntime import OrtOptions
from infertool.backends.torch import SourceOptions
from infertool.inputs.feeds import FeedSource, InputOptions
from infertool.measure.timing import Budget, run_for
from infertool.stats import Stats


def bare_loop(call, iterations: int) -> float:
    samples = []
    for _ in range(iterations):
        t0 = time.perf_counter_ns()
        call()
        samples.append(time.perf_counter_ns() - t0)
    return statistics.median(samples) / 1e6


def calls(runner, feeds):
    """infertool's call and a bare call doing the same work, written here against the runtime itself."""
    if hasattr(runner, "session"):  # ONNX Runtime
        if runner.device_resident:
            runner.bind(feeds)
            session, binding = runner.session, runner.io_binding
            return runner.run_bound, (lambda: session.run_with_iobinding(binding)), "device_resident"
        session, names = runner.session, [o.name for o in runner.outputs]
        return (lambda: runner.infer(feeds)), (lambda: session.run(names, feeds)), "end_to_end"
    import torch

    module = runner.module
    if runner.device_resident:
        runner.bind(feeds)  # checks the model, compiles, keeps the inputs on the device
        inputs = runner.bound_inputs

        def bare():
            with torch.inference_mode():
                module(*inputs)
            torch.cuda.synchronize()

        return runner.run_bound, bare, "device_resident"
    names = [spec.name for spec in runner.inputs]

    def bare_host():
        with torch.inference_mode():
            output = module(*[torch.from_numpy(feeds[n]) for n in names])
        return output.numpy()

    runner.infer(feeds)  # checks the model and compiles
    return (lambda: runner.infer(feeds)), bare_host, "end_to_end"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model", type=Path)
    parser.add_argument("--backend", default="ort-cpu")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--cuda-graph", action="store_true")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--provider-option", action="append", default=[], metavar="KEY=VALUE", help="ort-cuda: e.g. prefer_nhwc=1 (repeatable)")
    parser.add_argument("--source", help="torch / torch-compile: the PyTorch model the ONNX came from")
    parser.add_argument("--compile-mode", default=None)
    parser.add_argument("--input-shape", action="append", default=[], metavar="NAME:DIMS", help="e.g. input_ids:1x128 (repeatable)")
    parser.add_argument("--int-range", default="0:100")
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()

    ort = OrtOptions(intra_op_threads=args.threads, provider_options=dict(o.split("=", 1) for o in args.provider_option))
    options = RunnerOptions(cuda_graph=args.cuda_graph).with_group(ort).with_group(SourceOptions(args.source, compile_mode=args.compile_mode))
    runner = registry.get(args.backend).open(args.model, options)
    runner.prepare()
    shapes = {name: tuple(int(d) for d in dims.split("x")) for name, _, dims in (s.rpartition(":") for s in args.input_shape)}
    low, high = (int(v) for v in args.int_range.split(":"))
    feeds = FeedSource(runner.inputs, InputOptions(shapes=shapes, int_range=(low, high))).feeds(args.batch)
    infertool_call, bare_call, mode = calls(runner, feeds)
    for _ in range(max(50, args.iterations // 5)):
        bare_call()
    bare, harness = [], []
    for _ in range(args.rounds):
        bare.append(bare_loop(bare_call, args.iterations))
        harness.append(Stats.from_ns(run_for(infertool_call, Budget(args.iterations, 0.0))).median)
    runner.close()
    bare_ms, harness_ms = statistics.median(bare), statistics.median(harness)
    result = {
        "schema": "infertool.harness-fidelity/1",
        "model": str(args.model), "backend": args.backend, "batch": args.batch, "cuda_graph": args.cuda_graph, "source": args.source,
        "provider_options": args.provider_option,
        "mode": mode, "rounds": args.rounds, "iterations_per_round": args.iterations,
        "bare_median_ms": round(bare_ms, 5), "infertool_median_ms": round(harness_ms, 5),
        "ratio": round(harness_ms / bare_ms, 4), "within_3_percent": abs(harness_ms / bare_ms - 1) <= 0.03,
        "bare_round_medians_ms": [round(x, 5) for x in bare], "infertool_round_medians_ms": [round(x, 5) for x in harness],
        "env": environment.fingerprint(),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{args.backend} batch {args.batch}{' cuda-graph' if args.cuda_graph else ''}: bare {bare_ms:.4f} ms, "
          f"infertool {harness_ms:.4f} ms, ratio {harness_ms / bare_ms:.4f}")


if __name__ == "__main__":
    main()
