"""Harness fidelity: infertool's measured median against a bare loop on the same session.

Alternates rounds (bare, infertool, bare, ...) so drift hits both alike, and compares the
median of the per-round medians. The bare loop is written out here, independent of infertool's
timing code; infertool's side is the bench loop itself (`run_for` + `Stats`).

    python benchmarks/harness_fidelity.py MODEL.onnx --backend ort-cpu --batch 8 -o result.json
    python benchmarks/harness_fidelity.py resnet50.fp16.onnx --backend ort-cuda --cuda-graph --batch 1 -o result.json
"""

import argparse
import json
import statistics
import time
from pathlib import Path

from infertool import environment
from infertool.backends import registry
from infertool.backends.base import OrtOptions, RunnerOptions
from infertool.feeds import FeedSource, InputOptions
from infertool.measure.timing import Budget, run_for
from infertool.stats import Stats


def bare_loop(call, iterations: int) -> float:
    samples = []
    for _ in range(iterations):
        t0 = time.perf_counter_ns()
        call()
        samples.append(time.perf_counter_ns() - t0)
    return statistics.median(samples) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model", type=Path)
    parser.add_argument("--backend", default="ort-cpu")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--cuda-graph", action="store_true")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()

    options = RunnerOptions(cuda_graph=args.cuda_graph, ort=OrtOptions(intra_op_threads=args.threads))
    runner = registry.get(args.backend).open(args.model, options)
    runner.prepare()
    feeds = FeedSource(runner.inputs, InputOptions()).feeds(args.batch)
    if runner.device_resident:
        runner.bind(feeds)
        session, binding = runner.session, runner.io_binding
        infertool_call, bare_call, mode = runner.run_bound, (lambda: session.run_with_iobinding(binding)), "device_resident"
    else:
        session, names = runner.session, [o.name for o in runner.outputs]
        infertool_call, bare_call, mode = (lambda: runner.infer(feeds)), (lambda: session.run(names, feeds)), "end_to_end"
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
        "model": str(args.model), "backend": args.backend, "batch": args.batch, "cuda_graph": args.cuda_graph,
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
