"""A seeded fuzz campaign kept in the suite (issue 12): a few hundred generated bad inputs across
every command, run in this process.

Each case takes a working command line and breaks one thing: an option value, an input file, an
output path, or the model; harmless extras (--force, -q, --json, --verbose) are mixed in. Every
case must end in exit 1 or 2 (never 3, a hang or a crash) with one printable error line that
names the problem and a fix, keep stdout clean, and leave the sandbox exactly as it was: no file
added (scratch files included), changed or lost.
"""

import hashlib
import json
import os
import random
import re
import stat
import time
from pathlib import Path

import pytest

import hostile
from conftest import run_main

SEED = 1212
CASES = 300
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

BASES = {
    "run": ["run", "{mlp}"],
    "bench": ["bench", "{mlp}", "-n", "3", "--duration", "0", "--warmup", "1"],
    "quantize": ["quantize", "{mlp}", "-p", "fp16", "-o", "{root}/fuzz.onnx"],
    "build-engine": ["build-engine", "{mlp}", "-o", "{root}/fuzz.engine"],
    "convert": ["convert", "{factories_py}:prints_and_returns_junk", "--input-shape", "1x4", "-o", "{root}/fuzzc.onnx"],
    "doctor": ["doctor"],
}
GENERATED = ("run", "bench", "quantize", "build-engine")

# values each of which is wrong for the option it is given to
INTS = ["-1", "²", "99999999999999999999", "1e14", "x", "", "1.5", "\x1b[31m7"]
POSITIVE = [*INTS, "0"]
FLOATS = ["nan", "inf", "-inf", "1e400", "x", "", "²", "-1"]
CHOICES = ["\x1b[31mbogus", "y" * 5000, "ORT-CPU", "[/red]"]
SHAPES = ["x:1x3xbig", "x:²x16", "x:0x16", "x:-1x16", "x:" + "1x" * 1001 + "1", ":1x16", "x:99999999999x16", "x:" + "9" * 6000,
          "nope:1x16", "x:1x17", "x:1", "x:3000000000x16"]
OPTIONS = [
    (GENERATED, "--input-shape", SHAPES),
    (GENERATED, "--seed", ["-1", "²", "99999999999999999999999", "x", ""]),
    (GENERATED, "--int-range", ["5:5", "9:1", "0:1e3", "0:99999999999999999999999", "a:b", "", "²:3", "1"]),
    (GENERATED, "--crop", ["²x2", "0x0", "1x2x3", "99999x1", "-1x2", "x"]),
    (GENERATED, "--resize", [*POSITIVE, "70000"]),
    (GENERATED, "--mean", ["1,2", "nan,0,0", "a,b,c", "1,2,3,4", "inf,1,1"]),
    (GENERATED, "--std", ["1,2", "0,1,1", "nan,1,1", "a,b,c"]),
    (GENERATED, "--preprocess", CHOICES),
    (GENERATED, "--layout", CHOICES),
    (("run", "bench"), "--input-data", CHOICES),
    (("run", "bench", "quantize"), "--timeout", [*FLOATS, "100000000"]),
    (("run",), "--batch", POSITIVE),
    (("run",), "--top-k", POSITIVE),
    (("run",), "--backend", CHOICES),
    (("run", "bench", "build-engine"), "--device", INTS),
    (("bench",), "--iterations", [*POSITIVE, "2000000"]),
    (("bench",), "--duration", [*FLOATS, "3601"]),
    (("bench",), "--warmup", ["-1", "1e14", "99999999999", "1000000s", "10h", "nan", "1.5", "", "²"]),
    (("bench",), "--threads", ["-1", "100000", "²", "x"]),
    (("bench",), "--inter-op-threads", ["-1", "100000", "²", "x"]),
    (("bench",), "--batch", ["0", "-1", "1,x", "²", "99999999999999999999", ",", "1e3"]),
    (("bench",), "--graph-opt", CHOICES),
    (("bench",), "--ort-option", ["novalue", "=1", ""]),
    (("bench", "convert"), "--atol", FLOATS),
    (("bench", "convert"), "--rtol", FLOATS),
    (("bench", "quantize"), "--min-cosine", ["nan", "inf", "-inf", "x", ""]),
    (("bench",), "--max-regression", ["nan", "inf", "-5%", "x%", "1e999", "", "²%"]),
    (("bench",), "--gate-stat", CHOICES),
    (("bench",), "--backend", [*CHOICES, ""]),
    (("bench", "build-engine"), "--workspace", ["-1", "0", "99999999999999999G", "x", "1T", "²"]),
    (("bench", "build-engine"), "--opt-level", ["-1", "6", "x"]),
    (("quantize",), "-p", [*CHOICES, ""]),
    (("quantize",), "--target", [*CHOICES, ""]),
    (("quantize",), "--calib-method", [*CHOICES, ""]),
    (("quantize", "build-engine"), "--calib-samples", [*POSITIVE, "2000000"]),
    (("quantize",), "--eval-samples", [*POSITIVE, "2000000"]),
    (("quantize",), "--min-top1", ["nan", "inf", "x", ""]),
    (("quantize",), "--eval-backend", [*CHOICES, ""]),
    (("convert",), "--input-shape", SHAPES[:8]),
    (("convert",), "--dtype", ["float128", "x:bogus", "", "\x1b[31m"]),
    (("convert",), "--dynamic-axis", ["x", "x:a:b", "x:99:b", "x:1:1b", "x:²:s", ""]),
    (("convert",), "--opset", ["-1", "0", "6", "100", "x"]),
    (("convert",), "--exporter", CHOICES),
    (("build-engine",), "--hardware-compat", CHOICES),
    (("build-engine",), "--batch", POSITIVE),
]

DAMAGED = ["{empty_npz}", "{truncated_npz}", "{badcrc_npz}", "{deflate_npz}", "{badheader_npy}", "{hugeshape_npy}", "{truncated_npy}",
           "{zerobatch_npz}", "{hugemember_npz}", "{pickle_npz}", "{rawmember_npz}", "{fifo}", "{bomb_png}", "{notimage_png}",
           "/dev/zero", "{adir}", "{root}/missing.npz", "{existing_json}", "{root}/" + "n" * 300 + ".npz"]
MODELS = ["{nonutf8_onnx}", "{elem99_onnx}", "{negdim_onnx}", "{hugedim_onnx}", "{rank1001_onnx}", "{garbage_onnx}", "{empty_onnx}",
          "{fifo}", "{adir}", "{root}/missing.onnx"]
BASELINES = [f"{{{name.replace('.', '_')}}}" for name in hostile.BASELINES]
FILES = [  # (base, the option added, values it refuses; those a --force would accept come last, in REPLACEABLE)
    (["run", "{mlp}"], "--inputs", DAMAGED),
    (["bench", "{mlp}", "-n", "3", "--duration", "0", "--warmup", "1"], "--inputs", DAMAGED),
    (["quantize", "{mlp}", "-p", "int8", "-o", "{root}/fuzz.onnx"], "--calib-data", DAMAGED),
    (["quantize", "{mlp}", "-p", "fp16", "-o", "{root}/fuzz.onnx"], "--eval-data", DAMAGED),
    (["run", "{img}", "--top-k", "2"], "--labels", ["{labels-binary_txt}", "/dev/zero", "{fifo}", "{adir}", "{root}/missing.txt", "{existing_json}"]),
    (["bench", "{mlp}", "-n", "3", "--duration", "0"], "--baseline", [*BASELINES, "{fifo}", "/dev/zero", "{adir}", "{root}/missing.json", "{garbage_onnx}"]),
    (["bench", "{mlp}", "-n", "3", "--duration", "0"], "--reference", ["{renamed}", "{garbage_onnx}", "{nonutf8_onnx}", "{fifo}", "{root}/missing.onnx"]),
    (["quantize", "{mlp}", "-p", "int8", "--calib-data", "random", "-o", "{root}/fuzz.onnx"], "--calib-cache", ["{fifo}", "{adir}", "{not-a-cache}", "{dangling_json}"]),
]
REPLACEABLE = {"{not-a-cache}", "{dangling_json}"}  # refused unless --force
BAD_PATHS = ["/proc/fuzz{suffix}", "/sys/fuzz{suffix}", "{afile}/fuzz{suffix}", "{root}/" + "n" * 300 + "{suffix}", "{symloop}/fuzz{suffix}",
             "{root}/" + "n" * 300 + "/fuzz{suffix}"]
OUTPUTS = [  # (base, output option, suffix, paths that exist already: bad without --force)
    (BASES["run"], "--json", ".json", ["{dangling_json}", "{existing_json}"]),
    (BASES["bench"], "--json", ".json", ["{dangling_json}", "{existing_json}"]),
    (BASES["quantize"], "--json", ".json", ["{dangling_json}", "{existing_json}"]),
    (BASES["doctor"], "--json", ".json", ["{dangling_json}", "{existing_json}"]),
    (BASES["run"], "-o", ".npz", ["{adir}"]),
    (["quantize", "{mlp}", "-p", "fp16"], "-o", ".onnx", ["{mlp}"]),
    (BASES["bench"], "--csv", ".csv", ["{existing_json}", "{dangling_json}"]),
    (BASES["bench"], "--markdown", ".md", ["{existing_json}"]),
    (BASES["bench"], "--save-optimized", ".onnx", ["{mlp}"]),
    (["convert", "{factories_py}:prints_and_returns_junk", "--input-shape", "1x4"], "-o", ".onnx", ["{mlp}"]),
]
SOURCES = ["{factories_py}:exits", "{factories_py}:exits_with_text", "{factories_py}:raises_base_exception", "sys:exit",
           "builtins:breakpoint", "os:abort", "{root}/missing.py:build", "{factories_py}:nope", "{garbage_onnx}", "{adir}",
           "{fifo}", "{existing_json}", "m" * 5000]


def _option(rng):
    commands, option, values = rng.choice(OPTIONS)
    return [*BASES[rng.choice(commands)], option, rng.choice(values)], True


def _file(rng):
    base, option, values = rng.choice(FILES)
    value = rng.choice(values)
    return [*base, option, value], value not in REPLACEABLE


def _model(rng):
    command = rng.choice(("run", "bench", "quantize", "build-engine"))
    args = list(BASES[command])
    args[1] = rng.choice(MODELS)
    return args, True


def _output(rng):
    base, option, suffix, existing = rng.choice(OUTPUTS)
    if rng.random() < 0.25:
        return [*base, option, rng.choice(existing)], False  # refused without --force
    return [*base, option, rng.choice(BAD_PATHS).replace("{suffix}", suffix)], True


def _source(rng):
    return ["convert", rng.choice(SOURCES), "--input-shape", "1x4", "-o", "{root}/fuzzc.onnx"], True


def _endless(rng):
    command = rng.choice(("run", "bench", "quantize"))
    args = list(BASES[command])
    args[1] = "{loop}"
    return [*args, "--timeout", "0.3"], True


KINDS = [(_option, 45), (_file, 25), (_model, 10), (_output, 15), (_source, 4), (_endless, 1)]


def generate(seed: int, count: int) -> list[list[str]]:
    rng = random.Random(seed)
    makers = [maker for maker, weight in KINDS for _ in range(weight)]
    cases = []
    for _ in range(count):
        args, force_ok = rng.choice(makers)(rng)
        if force_ok and rng.random() < 0.3:
            args.append("--force")
        for extra in ("-q", "--verbose"):
            if rng.random() < 0.2:
                args.append(extra)
        if rng.random() < 0.3 and "--json" not in args and args[0] != "build-engine":
            args.append("--json")  # last: JSON to stdout
        cases.append(args)
    return cases


def snapshot(root: Path) -> dict:
    state = {}
    for folder, dirs, names in os.walk(root):
        for name in dirs + names:
            path = Path(folder) / name
            info = path.lstat()
            key = str(path.relative_to(root))
            if stat.S_ISLNK(info.st_mode):
                state[key] = ("link", os.readlink(path))
            elif stat.S_ISREG(info.st_mode):
                state[key] = ("file", info.st_size, info.st_mtime_ns, hashlib.sha1(path.read_bytes()).hexdigest())
            else:
                state[key] = (stat.S_IFMT(info.st_mode),)
    return state


def check(args: list[str], result, before: dict, after: dict) -> None:
    assert result.returncode in (1, 2), f"exit {result.returncode}"
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, "not one error line"
    line = errors[0]
    assert "Traceback" not in result.stderr and "internal error" not in line, "an internal error"
    assert "(hint:" in line and len(line) < 500, "no hint, or longer than a few screen lines"
    assert not CONTROL.search(result.stdout + result.stderr), "a control character reached the terminal"
    if args[-1] == "--json":
        assert not result.stdout.strip() or json.loads(result.stdout), "stdout is not JSON"
    assert after == before, f"files changed: {sorted(set(after.items()) ^ set(before.items()))[:4]}"


@pytest.mark.timeout(300, method="thread")  # a hang in C (a runtime call) ends the run with every thread's stack
def test_generated_bad_inputs(tmp_path):
    paths = {**hostile.sandbox(tmp_path), "root": tmp_path}
    fields = {k.replace(".", "_"): str(v) for k, v in paths.items()}
    started, failures = time.monotonic(), []
    before = snapshot(tmp_path)
    for args in generate(SEED, CASES):
        argv = [a.format(**fields) if "{" in a else a for a in args]
        result = run_main(*argv, cwd=tmp_path)
        after = snapshot(tmp_path)
        try:
            check(argv, result, before, after)
        except AssertionError as exc:
            failures.append(f"{exc}: {' '.join(a[:60] for a in args)}\n    {result.stderr.strip()[-400:]}")
            before = after
    elapsed = time.monotonic() - started
    assert not failures, f"{len(failures)} of {CASES} cases failed:\n" + "\n".join(failures[:15])
    assert elapsed < 120, f"the campaign took {elapsed:.0f} s"
