"""The zoo: real architectures built from code with random weights (`zoo_models.py`), each through
infertool's chain (convert -> quantize fp16 -> run on ort-cpu) and through each plain exporter alone
(dynamo, TorchScript, tf2onnx) with a correctness check in ONNX Runtime. Every step runs in its own
process with a timeout, so a runtime that crashes or hangs costs one cell, not the run.

    .venv-zoo/bin/python benchmarks/zoo.py                       # all; writes benchmarks/results/zoo/
    .venv-zoo/bin/python benchmarks/zoo.py --only resnet18,bert  # some
    .venv-zoo/bin/python benchmarks/zoo.py --fast --out DIR      # the `make test` subset

`make zoo-venv` makes .venv-zoo (torch 2.14.1 + torchvision, transformers, timm, TensorFlow).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from zoo_models import BY_NAME, ZOO, Arch  # noqa: E402

INT_HIGH = 100  # generated token ids lie in [0, INT_HIGH): every model's vocabulary is at least that big
PLAIN = {"pytorch": ("dynamo", "torchscript"), "keras": ("tf2onnx",)}
# --fast asks only whether some plain exporter manages: the cheaper first, and none after one that does
FAST_PLAIN = {"pytorch": ("torchscript", "dynamo"), "keras": ("tf2onnx",)}
# the plain exporters' check: every output within this share of its largest |value| (fp32 vs fp32)
RELATIVE_TOLERANCE = 1e-3


@dataclass
class Step:
    status: str  # ok | wrong | refused | error | crash | timeout | skipped
    code: int | None = None  # exit code (negative: the signal that killed it)
    reason: str = ""
    seconds: float = 0.0


def run_step(command: list[str], timeout: float, cwd: Path) -> Step:
    """One child process; its exit code, its error line, a crash or a timeout."""
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": os.pathsep.join((str(HERE.parent), str(HERE)))})  # this checkout's infertool
    except subprocess.TimeoutExpired:
        return Step("timeout", None, f"no answer in {timeout:.0f} s", time.perf_counter() - started)
    seconds = time.perf_counter() - started
    if done.returncode < 0:
        return Step("crash", done.returncode, f"killed by {signal.Signals(-done.returncode).name}", seconds)
    lines = [line for line in done.stderr.splitlines() if line.startswith(("error:", "wrong:"))]
    reason = lines[-1].split(":", 1)[1].strip() if lines else (done.stderr.strip().splitlines() or [""])[-1]
    if done.returncode == 0:
        return Step("ok", 0, "", seconds)
    status = "wrong" if lines and lines[-1].startswith("wrong:") else "refused" if done.returncode in (1, 2) else "error"
    return Step(status, done.returncode, reason[:300], seconds)


def shape_args(arch: Arch) -> list[str]:
    """--input-shape per input, as a user gives it to every command (quantize and run need the sizes of
    dynamic axes such as a sequence length too)."""
    return [part for name, (shape, _) in arch.inputs.items() for part in ("--input-shape", f"{name}:{'x'.join(map(str, shape))}")]


def convert_args(arch: Arch, source: str, output: Path) -> list[str]:
    args = ["convert", source, "-o", str(output), "--force", *shape_args(arch)]
    for name, (_, dtype) in arch.inputs.items():
        if dtype != "float32":
            args += ["--dtype", f"{name}:{dtype}"]
    return [*args, *arch.flags]


def chain(arch: Arch, work: Path, timeout: float) -> dict[str, Step]:
    """infertool convert -> quantize fp16 -> run, each through the real command line."""
    cli = [sys.executable, "-m", "infertool"]
    source = f"{HERE / 'zoo_models.py'}:{arch.name}"
    steps: dict[str, Step] = {}
    if arch.framework == "keras":
        steps["save"] = run_step([sys.executable, __file__, "--child", "save", arch.name, str(work)], timeout, work)
        if steps["save"].status != "ok":
            return steps
        source = str(work / "model.keras")
    model, fp16 = work / "model.onnx", work / "model.fp16.onnx"
    steps["convert"] = run_step([*cli, *convert_args(arch, source, model)], timeout, work)
    if steps["convert"].status == "ok":
        steps["fp16"] = run_step([*cli, "quantize", str(model), "-p", "fp16", "-o", str(fp16), "--force", "--int-range", f"0:{INT_HIGH}", *shape_args(arch)], timeout, work)
    if "fp16" in steps and steps["fp16"].status == "ok":
        steps["run"] = run_step([*cli, "run", str(fp16), "--backend", "ort-cpu", "--int-range", f"0:{INT_HIGH}", *shape_args(arch)], timeout, work)
    return steps


def measure(arch: Arch, timeout: float, fast: bool = False) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"zoo-{arch.name}-") as folder:
        work = Path(folder)
        steps = chain(arch, work, timeout)
        for exporter in (FAST_PLAIN if fast else PLAIN)[arch.framework]:
            steps[exporter] = run_step([sys.executable, __file__, "--child", exporter, arch.name, str(work)], timeout, work)
            if fast and steps[exporter].status == "ok":
                break
    inputs = {name: "x".join(map(str, shape)) for name, (shape, _) in arch.inputs.items()}
    return {"name": arch.name, "family": arch.family, "framework": arch.framework, "inputs": inputs, "steps": {k: asdict(v) for k, v in steps.items()}}


# --- children: one plain export and its check, or saving a Keras model --------------------------------

def _feeds(arch: Arch, seed: int = 0) -> dict:
    import numpy as np

    rng = np.random.default_rng(seed)
    return {
        name: rng.integers(0, INT_HIGH, shape).astype(dtype) if dtype.startswith("int") else rng.standard_normal(shape).astype(dtype)
        for name, (shape, dtype) in arch.inputs.items()
    }


def _outputs(result) -> list:
    """A model's outputs as numpy arrays, flattened the way the exporters flatten them."""
    import numpy as np

    if hasattr(result, "detach"):
        return [result.detach().numpy()]
    if isinstance(result, dict):
        return [a for v in result.values() for a in _outputs(v)]
    if isinstance(result, (list, tuple)):
        return [a for v in result for a in _outputs(v)]
    return [np.asarray(result)] if result is not None else []


def _agree(expected: list, got: list) -> str:
    """'' where every output has the same shape and lies within RELATIVE_TOLERANCE of its largest |value|."""
    import numpy as np

    if len(expected) != len(got):
        return f"{len(got)} outputs, the model has {len(expected)}"
    for index, (want, have) in enumerate(zip(expected, got)):
        if want.shape != have.shape:
            return f"output {index}: shape {have.shape}, the model gives {want.shape}"
        scale = float(np.abs(want).max()) if want.size else 0.0
        error = float(np.abs(want.astype(np.float64) - have.astype(np.float64)).max()) if want.size else 0.0
        if not error <= RELATIVE_TOLERANCE * scale + 1e-5:
            return f"output {index}: max abs error {error:.3g} for values up to {scale:.3g}"
    return ""


def _plain_torch(arch: Arch, exporter: str, path: Path) -> tuple[list, list]:
    import onnxruntime as ort
    import torch

    model = arch.build()
    feeds = _feeds(arch)
    args = tuple(torch.from_numpy(v) for v in feeds.values())
    with torch.no_grad():
        expected = _outputs(model(*args))
        torch.onnx.export(model, args, str(path), dynamo=exporter == "dynamo", input_names=list(feeds), opset_version=18 if exporter == "dynamo" else 17)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    return expected, session.run(None, {k: v for k, v in feeds.items() if k in names})


def _plain_keras(arch: Arch, path: Path) -> tuple[list, list]:
    import numpy as np
    import onnxruntime as ort
    import tensorflow as tf
    import tf2onnx

    model = arch.build()
    feeds = _feeds(arch)
    specs = [tf.TensorSpec(v.shape, tf.as_dtype(v.dtype), name=k) for k, v in feeds.items()]
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=specs, opset=17)
    path.write_bytes(proto.SerializeToString())
    tensors = [tf.constant(v) for v in feeds.values()]
    expected = [np.asarray(t) for t in tf.nest.flatten(model(tensors if len(tensors) > 1 else tensors[0]))]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = [i.name for i in session.get_inputs()]
    if len(inputs) != len(feeds):
        print(f"wrong: the ONNX model has {len(inputs)} inputs ({', '.join(inputs)}), the Keras model {len(feeds)}", file=sys.stderr)
        sys.exit(1)
    return expected, session.run(None, dict(zip(inputs, feeds.values())))


def child(stage: str, name: str, work: Path) -> None:
    import numpy as np

    arch = BY_NAME[name]
    if stage == "save":
        arch.build().save(work / "model.keras")
        return
    path = work / f"plain-{stage}.onnx"
    try:
        expected, got = _plain_keras(arch, path) if stage == "tf2onnx" else _plain_torch(arch, stage, path)
    except Exception as exc:  # the exporter's own failure: its type and first line
        text = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
        cause = exc.__cause__ or exc.__context__
        if cause is not None:
            text = f"{text} <- {type(cause).__name__}: {next((ln.strip() for ln in str(cause).splitlines() if ln.strip()), '')}"
        print(f"error: {type(exc).__name__}: {text[:280]}", file=sys.stderr)
        sys.exit(2)
    problem = _agree([np.asarray(e) for e in _outputs(expected)], [np.asarray(g) for g in got])
    if problem:
        print(f"wrong: {problem}", file=sys.stderr)
        sys.exit(1)


# --- the table ----------------------------------------------------------------------------------------

CELLS = {"ok": "ok", "wrong": "WRONG", "refused": "refused", "error": "ERROR", "crash": "CRASH", "timeout": "timeout"}
COLUMNS = ("dynamo", "torchscript", "tf2onnx", "convert", "fp16", "run")


def chain_ok(row: dict) -> bool:
    return row["steps"].get("run", {}).get("status") == "ok"


def plain_ok(row: dict) -> bool:
    return any(row["steps"].get(e, {}).get("status") == "ok" for e in ("dynamo", "torchscript", "tf2onnx"))


def reason(row: dict) -> str:
    """The first failing step of infertool's chain and its one line."""
    for stage in ("save", "convert", "fp16", "run"):
        step = row["steps"].get(stage)
        if step and step["status"] != "ok":
            return f"{stage}: {step['reason']}" if step["status"] != "crash" else f"{stage}: {step['reason']} (runtime crash)"
    return ""


def table(rows: list[dict]) -> str:
    lines = ["| model | family | " + " | ".join(COLUMNS) + " | why infertool stopped |", "|" + "---|" * (len(COLUMNS) + 3)]
    for row in rows:
        cells = [CELLS.get(row["steps"][c]["status"], row["steps"][c]["status"]) if c in row["steps"] else "" for c in COLUMNS]
        why = reason(row).replace("|", "\\|")
        lines.append(f"| {row['name']} | {row['family']} | " + " | ".join(cells) + f" | {why} |")
    return "\n".join(lines)


def summary(rows: list[dict]) -> str:
    statuses = [s["status"] for r in rows for s in r["steps"].values()]
    internal = sum(1 for r in rows for k, s in r["steps"].items() if k in ("convert", "fp16", "run") and s["code"] == 3)
    plain_only = [r["name"] for r in rows if plain_ok(r) and not chain_ok(r)]
    torch_rows = [r for r in rows if r["framework"] == "pytorch"]

    def count(exporter: str) -> int:
        return sum(r["steps"].get(exporter, {}).get("status") == "ok" for r in torch_rows)

    return "\n".join([
        f"- {len(rows)} architectures; infertool convert → fp16 → run succeeds on {sum(map(chain_ok, rows))}, "
        f"convert alone on {sum(r['steps'].get('convert', {}).get('status') == 'ok' for r in rows)}; "
        f"the best plain exporter on {sum(map(plain_ok, rows))}",
        f"- PyTorch ({len(torch_rows)}): infertool convert {sum(r['steps'].get('convert', {}).get('status') == 'ok' for r in torch_rows)}, "
        f"plain dynamo {count('dynamo')}, plain TorchScript {count('torchscript')}",
        f"- a plain exporter works, infertool's chain does not: {', '.join(plain_only) or 'none'}",
        f"- infertool exit 3 (internal error): {internal}; runtime crashes: {statuses.count('crash')}; timeouts: {statuses.count('timeout')}",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="comma-separated names (zoo_models.py)")
    parser.add_argument("--fast", action="store_true", help="the `make test` subset; the plain exporters until one works")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "zoo")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per step")
    parser.add_argument("--resume", action="store_true", help="skip architectures already in the results")
    parser.add_argument("--child", nargs=3, metavar=("STAGE", "NAME", "WORK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child[0], args.child[1], Path(args.child[2]))
    chosen = [BY_NAME[n] for n in args.only.split(",")] if args.only else [a for a in ZOO if a.fast or not args.fast]
    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / "zoo.json"
    done = {r["name"]: r for r in json.loads(results.read_text())["rows"]} if results.exists() else {}
    for arch in chosen:
        if args.resume and arch.name in done:
            continue
        print(f"{arch.name} …", end=" ", flush=True)
        done[arch.name] = measure(arch, args.timeout, args.fast)
        print(" ".join(f"{k}={v['status']}" for k, v in done[arch.name]["steps"].items()), flush=True)
        rows = [done[a.name] for a in ZOO if a.name in done]
        results.write_text(json.dumps({"environment": _environment(), "rows": rows}, indent=1) + "\n")
        (args.out / "zoo.md").write_text(summary(rows) + "\n\n" + table(rows) + "\n")


def _environment() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("infertool", "torch", "torchvision", "transformers", "timm", "tensorflow", "tf2onnx", "onnx", "onnxruntime", "onnxscript"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    return found


if __name__ == "__main__":
    main()
