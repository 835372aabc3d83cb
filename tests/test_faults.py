"""Hostile input and faults (issue 12): a case for every class of the fuzz campaign's findings.

Each case hung, crashed, ended in an internal error (exit 3), printed a library's text, or left
or lost a file before. Bad input now gets one line naming the problem and the fix (exit 2; 1
for a failed check), and a command's outputs are all written or none. Most cases run in this
process (`run_main`); signals and unbounded reads run as real processes.
"""

import json
import os
import resource
import signal
import subprocess
import sys
import time
from dataclasses import replace

import pytest

from infertool import files
from infertool.backends import registry
from infertool.records.bench import BenchRow
from infertool.records.gate import Measured, gate
from infertool.stats import Stats

import hostile
from conftest import ROOT, one_line_error, run_main

QUICK = ("-n", "3", "--duration", "0", "--warmup", "1")


@pytest.fixture(scope="module")
def sb(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    return {**hostile.sandbox(root), "root": root}


def error(result, code: int = 2) -> str:
    assert result.returncode == code, (result.returncode, result.stderr[-3000:])
    line = one_line_error(result)
    assert "internal error" not in line and "\x1b" not in line and len(line) < 500, line
    return line


def fill(args, sb) -> list[str]:
    return [str(a).format(**{k.replace(".", "_"): v for k, v in sb.items()}) for a in args]


# ---------------------------------------------------------------- counts, durations, sizes, option values

BAD_VALUES = {
    "iterations 1e14": (["bench", "{mlp}", "--iterations", "100000000000000"], "--iterations"),
    "duration inf": (["bench", "{mlp}", "--duration", "inf"], "--duration"),
    "duration 1e9": (["bench", "{mlp}", "--duration", "1e9"], "--duration"),
    "warm-up iterations": (["bench", "{mlp}", "--warmup", "99999999999"], "--warmup"),
    "warm-up seconds": (["bench", "{mlp}", "--warmup", "1000000s"], "--warmup"),
    "threads 100000": (["bench", "{mlp}", "--threads", "100000"], "--threads"),
    "huge batch sweep": (["bench", "{mlp}", "--batch", "99999999999999999999"], "--batch"),
    "huge run batch": (["run", "{mlp}", "--batch", "99999999999999999999"], "--batch"),
    "seed -1": (["run", "{mlp}", "--seed", "-1"], "--seed"),
    "superscript digit": (["run", "{img}", "--crop", "²x2"], "--crop"),
    "arabic digit": (["run", "{mlp}", "--input-shape", "x:٣x16"], "--input-shape"),
    "max regression nan": (["bench", "{mlp}", "--max-regression", "nan", "--baseline", "{existing_json}"], "--max-regression"),
    "int range past int64": (["run", "{two}", "--int-range", "0:99999999999999999999999"], "--int-range"),
    "timeout nan": (["run", "{mlp}", "--timeout", "nan"], "--timeout"),
    "debug precision min-cosine nan": (["debug", "precision", "{mlp}", "-p", "fp16", "-o", "keep.txt", "--min-cosine", "nan"], "--min-cosine"),
    "debug precision min-top1 nan": (["debug", "precision", "{mlp}", "-p", "fp16", "-o", "keep.txt", "--min-top1", "nan"], "--min-top1"),
    "debug precision eval samples": (["debug", "precision", "{mlp}", "-p", "fp16", "-o", "keep.txt", "--eval-samples", "100000000000"], "--eval-samples"),
    "debug layers samples": (["debug", "layers", "{mlp}", "{mlp}", "--samples", "100000000000"], "--samples"),
    "mean inf": (["run", "{mlp}", "--mean", "inf,0,0"], "--mean"),
    "6,000-character shape": (["run", "{mlp}", "--input-shape", "x:" + "9" * 6000], "--input-shape"),
    "rank 1001 shape": (["run", "{mlp}", "--input-shape", "x:" + "1x" * 1000 + "1"], "--input-shape"),
}


@pytest.mark.parametrize("case", list(BAD_VALUES))
def test_option_values_are_bounded_at_parse_time(sb, case):
    args, option = BAD_VALUES[case]
    started = time.monotonic()
    line = error(run_main(*fill(args, sb), cwd=sb["root"]))
    assert option in line and time.monotonic() - started < 10
    assert len(line) < 300  # echoed input is cut


@pytest.mark.timeout(120, method="thread")  # were the deadline to fail, the loop would never return to Python
@pytest.mark.parametrize("command", ["run", "bench", "quantize"])
def test_an_endless_loop_stops_at_the_timeout_naming_the_node(sb, command):
    args = {"run": ["run", sb["loop"]], "bench": ["bench", sb["loop"], *QUICK],
            "quantize": ["quantize", sb["loop"], "-p", "fp16", "-o", sb["root"] / "loop16.onnx"]}[command]
    started = time.monotonic()
    line = error(run_main(*args, "--timeout", "1", cwd=sb["root"]))
    assert "--timeout of 1 s" in line and "Loop node 'spin'" in line
    assert time.monotonic() - started < 30 and not (sb["root"] / "loop16.onnx").exists()


IMPOSSIBLE = {
    "model dims": (["run", "{hugedim_onnx}"], "input 'x' of shape 1099511627776x1099511627776 (float32) would need"),
    "generated shape": (["run", "{mlp}", "--input-shape", "x:2000000000x16"], "input 'x' of shape 2000000000x16 (float32) would need"),
    "batch": (["run", "{mlp}", "--batch", "2147483647"], "would need 128.0 GiB"),
    "npy header": (["run", "{mlp}", "--inputs", "{hugeshape_npy}"], "of shape 1099511627776x16 (float32) would need 64.0 TiB"),
    "npz member": (["run", "{mlp}", "--inputs", "{hugemember_npz}"], "array 'x' in"),
    "image bomb": (["run", "{img}", "--inputs", "{bomb_png}"], "declares 10,000,000,000 pixels (111.8 GiB as float32 RGB), more than is safe to decode"),
    "rank 1001 model": (["run", "{rank1001_onnx}"], "rank 1001"),
    "negative dims": (["run", "{negdim_onnx}"], "negative dimension"),
}


@pytest.mark.parametrize("case", list(IMPOSSIBLE))
def test_impossible_sizes_are_refused_before_allocating(sb, case):
    args, message = IMPOSSIBLE[case]
    assert message in error(run_main(*fill(args, sb), cwd=sb["root"]))


@pytest.mark.timeout(180, method="thread")  # an open() of a FIFO blocks in C
def test_pipes_and_devices_are_refused_not_read(sb):
    for args in (["run", "{mlp}", "--inputs", "{fifo}"], ["run", "{img}", "--top-k", "2", "--labels", "{fifo}"],
                 ["bench", "{mlp}", "--baseline", "{fifo}"], ["run", "{fifo}"]):
        assert "not a regular file" in error(run_main(*fill(args, sb), cwd=sb["root"]))
    # /dev/zero used to be read until memory ran out: a real process, under a memory limit
    limit = lambda: resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))  # noqa: E731
    result = subprocess.run(
        [sys.executable, "-m", "infertool", "run", sb["img"], "--top-k", "2", "--labels", "/dev/zero"],
        capture_output=True, text=True, cwd=ROOT, timeout=120, preexec_fn=limit,
    )
    assert "labels file /dev/zero is not a regular file" in error(result)


# ---------------------------------------------------------------- signals and stale staging folders


def _staging(folder) -> set:
    return {p.name for p in folder.iterdir() if p.name.startswith(".infertool-")}


def test_sigterm_stops_like_ctrl_c_and_leaves_nothing(sb, tmp_path):
    command = [sys.executable, "-m", "infertool", "quantize", sb["mlp"], "-p", "int8", "--calib-data", "random",
               "--calib-samples", "200000", "-o", tmp_path / "q.onnx"]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, seen = time.monotonic() + 120, set()
    while not seen & _staging(tmp_path):  # a staging folder that lasts (not the writability probe): quantizing
        seen = _staging(tmp_path)
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert list(tmp_path.iterdir()) == []


def test_staging_folders_of_killed_processes_are_swept(sb, tmp_path):
    writer = (  # a process that stages an output, then waits (on stdin) or is killed
        "import os, sys; from pathlib import Path; from infertool import files\n"
        "staging = files._make_staging(Path(sys.argv[1]) / 'out.npz')\n"
        "(staging / 'out.npz').write_bytes(b'half written'); print(staging.name, flush=True)\n"
        "os.kill(os.getpid(), 9) if sys.argv[2] == 'killed' else sys.stdin.read()"
    )
    running = subprocess.Popen([sys.executable, "-c", writer, tmp_path, "running"], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        staged = running.stdout.readline().strip()
        assert subprocess.run([sys.executable, "-c", writer, tmp_path, "killed"], cwd=ROOT).returncode == -signal.SIGKILL
        legacy = tmp_path / ".infertool-0ld3r0n3"  # an older version's name, without a pid: stale after a day
        legacy.mkdir()
        os.utime(legacy, (time.time() - 3 * 86400,) * 2)
        assert len(list(tmp_path.iterdir())) == 3
        result = run_main("run", sb["mlp"], "-o", tmp_path / "out.npz", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out.npz", staged])
    finally:
        running.communicate("")


# ---------------------------------------------------------------- the gate and exit codes


def test_the_gate_never_passes_on_nan(sb):
    line = error(run_main("bench", sb["mlp"], *QUICK, "--baseline", sb["median-nan.json"], cwd=sb["root"]))
    assert "is a damaged bench result: rows[0].latency_ms.median is nan" in line
    model = {"path": "m.onnx", "sha256": "0"}

    def rows(median: float) -> list[Measured]:
        stats = replace(Stats.from_ns([1_000_000] * 3), median=median)
        return [Measured(BenchRow("ort-cpu", 1, "fp32", "end_to_end", {"end_to_end": stats}, {}, {}, {}), model, {})]

    assert gate(rows(1.0), rows(float("nan")), "b.json", registry.gate_settings, 0.1, "median").rows[0].regressed  # should one slip through: it fails
    assert gate(rows(1.0), rows(1.0), "b.json", registry.gate_settings, float("nan"), "median").rows[0].regressed


BAD_BASELINES = {
    "rows-dict.json": "is a damaged bench result: rows is an object, not a list",
    "row-null.json": "is a damaged bench result: rows[0] is null, not an object",
    "row-int.json": "is a damaged bench result: rows[0] is a number, not an object",
    "median-string.json": "is a damaged bench result: rows[0].latency_ms.median is a string, not a number",
    "median-list.json": "is a damaged bench result: rows[0].latency_ms.median is a list, not a number",
    "median-null.json": "is a damaged bench result: rows[0].latency_ms.median is missing",
    "timings-nan.json": "is a damaged bench result: rows[0].timings_ms.end_to_end.median is nan, not a number",
    "no-backend.json": "is a damaged bench result: rows[0].backend is missing",
    "no-latency.json": "is a damaged bench result: rows[0].latency_ms is missing",
    "model-list.json": "is a damaged bench result: model is a list, not an object",
    "nested.json": "is nested too deeply",
    "null.json": "is a damaged bench result: the file is null, not an object",
}


@pytest.mark.parametrize("name", list(BAD_BASELINES))
def test_baselines_that_are_not_bench_results(sb, name):
    line = error(run_main("bench", sb["mlp"], *QUICK, "--baseline", sb[name], cwd=sb["root"]))
    assert f"{sb[name]} {BAD_BASELINES[name]}" in line


# ---------------------------------------------------------------- damaged input files

DAMAGED = {
    "empty.npz": "is not a readable .npz archive",
    "truncated.npz": "is not a readable .npz archive",
    "badcrc.npz": "is not a readable .npz archive",
    "deflate.npz": "is not a readable .npz archive",
    "badheader.npy": "is not a valid .npy array (its header is damaged)",
    "truncated.npy": "declares shape 4x16 (float32, 256 B) but holds 10 B: the file is truncated",
    "pickle.npz": "holds Python objects (a pickle)",
    "rawmember.npz": "holds 'x', which is not a .npy array",
    "zerobatch.npz": "input 'x' in",
}


@pytest.mark.parametrize("name", list(DAMAGED))
def test_damaged_input_files(sb, name):
    line = error(run_main("run", sb["mlp"], "--inputs", sb[name], "--batch", "4", cwd=sb["root"]))
    assert DAMAGED[name] in line and "hint:" in line


# ---------------------------------------------------------------- outputs: paths, all or nothing, never lost

BAD_OUTPUTS = {
    "proc": ("/proc/infertool-fuzz.json", "cannot write /proc/infertool-fuzz.json"),
    "sys": ("/sys/infertool-fuzz.json", "cannot write /sys/infertool-fuzz.json"),
    "parent is a file": ("{afile}/out.json", "a part of the path is a file, not a folder"),
    "name too long": ("{root}/" + "n" * 300 + ".json", "longer than 255 bytes"),
    "folder name too long": ("{root}/" + "n" * 300 + "/out.json", "longer than 255 bytes"),
    "symlink loop": ("{symloop}/out.json", "symbolic link loop"),
    "dangling symlink": ("{dangling_json}", "already exists"),
}


@pytest.mark.parametrize("case", list(BAD_OUTPUTS))
def test_unwritable_outputs(sb, case):
    path, message = BAD_OUTPUTS[case]
    for args in (["run", "{mlp}", "--json", path], ["quantize", "{mlp}", "-p", "fp16", "-o", "{root}/q16.onnx", "--json", path]):
        assert message in error(run_main(*fill(args, sb), cwd=sb["root"]))
        assert not (sb["root"] / "q16.onnx").exists()
    assert os.path.islink(sb["dangling.json"]) and not sb["dangling.json"].exists()


def test_run_into_an_existing_folder_replaces_only_its_own_files(sb, tmp_path):
    folder = tmp_path / "outs"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    (folder / "output_7.pb").write_bytes(b"an old run's")
    assert "already exists" in error(run_main("run", sb["mlp"], "-o", folder, cwd=tmp_path))
    result = run_main("run", sb["mlp"], "-o", folder, "--force", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt", "output_0.pb"]
    assert (folder / "notes.txt").read_text() == "mine"


def test_outputs_are_all_or_nothing(tmp_path):
    kept, added = tmp_path / "kept.json", tmp_path / "new" / "folder" / "added.json"
    kept.write_text("before")
    with pytest.raises(RuntimeError), files.all_or_nothing():
        files.write_text_atomic(kept, "after", force=True)
        files.write_text_atomic(added, "new", force=False)
        assert kept.read_text() == "after" and added.exists()
        raise RuntimeError("the third output failed")
    assert kept.read_text() == "before" and not added.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.json"]


def test_a_file_that_is_no_calibration_cache_is_not_overwritten(sb, tmp_path):
    cache = tmp_path / "ranges.json"
    cache.write_text("my notes")
    args = ["quantize", sb["mlp"], "-p", "int8", "--calib-data", "random", "--calib-cache", cache, "-o", tmp_path / "q.onnx"]
    assert "is not a calibration cache" in error(run_main(*args, cwd=tmp_path))
    assert cache.read_text() == "my notes" and not (tmp_path / "q.onnx").exists()
    result = run_main(*args, "--force", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(cache.read_text())["CLS"] == "TensorsData"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.onnx", "ranges.json"]


def test_quantize_leaves_no_scratch_files_in_the_working_directory(tmp_path):
    model = hostile.symbolic_shape_gap(tmp_path / "gap.onnx")
    work = tmp_path / "work"
    work.mkdir()
    result = run_main("quantize", model, "-p", "int8-dynamic", "--target", "ort", "-o", tmp_path / "q.onnx", cwd=work)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "symbolic" not in result.stderr
    assert list(work.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gap.onnx", "q.onnx", "work"]


# ---------------------------------------------------------------- text from files: labels, names, messages


def test_labels_in_other_encodings(sb, tmp_path):
    for name, data in (("latin1.txt", "café\nthé\nbière\neau\n".encode("latin-1")), ("utf16.txt", "café\nthé\nbière\neau\n".encode("utf-16"))):
        (tmp_path / name).write_bytes(data)
        result = run_main("run", sb["img"], "--top-k", "4", "--labels", tmp_path / name, "--json", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert {e["label"] for e in json.loads(result.stdout)["top_k"]["rows"][0]} == {"café", "thé", "bière", "eau"}
    assert "binary, not text" in error(run_main("run", sb["img"], "--top-k", "2", "--labels", sb["labels-binary.txt"], cwd=tmp_path))


def test_escape_sequences_from_files_never_reach_the_terminal(sb, tmp_path):
    (tmp_path / "labels.txt").write_text("\x1b[2Jcat\n\x1b]0;pwned\x07dog\n[/bold]bird\nfish\n")
    result = run_main("run", sb["ansi.onnx"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout + result.stderr and "\\x1b[31mx" in result.stdout
    line = error(run_main("run", sb["ansi.onnx"], "--input-shape", "nope:1x4", cwd=tmp_path))
    assert "\\x1b]0;pwned\\x07" in line
    ranked = run_main("run", sb["img"], "--top-k", "4", "--labels", tmp_path / "labels.txt", cwd=tmp_path)
    assert ranked.returncode == 0, ranked.stderr
    assert "\x1b" not in ranked.stdout and "\\x1b[2Jcat" in ranked.stdout and "[/bold]bird" in ranked.stdout


GRAPHS = {
    "constant outputs in fp16": (["quantize", "{const}", "-p", "fp16", "-o", "{root}/const16.onnx", "--force"], 0, None),
    "rank-0 input in fp16": (["quantize", "{scalar}", "-p", "fp16", "-o", "{root}/scalar16.onnx", "--force", "--input-shape", "x:2x4"], 0, None),
    "non-UTF-8 names": (["run", "{nonutf8_onnx}"], 2, "has names that are not UTF-8 text"),
    "element type numpy lacks": (["run", "{elem99_onnx}"], 2, "element type onnx:99"),
    "reference with other names": (["bench", "{mlp}", *QUICK, "--reference", "{renamed}"], 2, "the reference model's outputs (z) differ from the model's (y)"),
    "an empty file": (["run", "{empty_onnx}"], 2, "is not an ONNX model"),
}


@pytest.mark.parametrize("case", list(GRAPHS))
def test_graph_oddities(sb, case):
    args, code, message = GRAPHS[case]
    result = run_main(*fill(args, sb), cwd=sb["root"])
    if code:
        assert message in error(result, code)
    else:
        assert result.returncode == 0, result.stderr


def test_library_text_only_with_verbose(sb):
    plain = error(run_main("run", sb["garbage.onnx"], cwd=sb["root"]))
    assert "DecodeError" not in plain and "not a readable ONNX model" in plain
    verbose = run_main("run", sb["garbage.onnx"], "--verbose", cwd=sb["root"])
    assert "detail: DecodeError" in verbose.stderr


# ---------------------------------------------------------------- factories that misbehave

FACTORIES = {
    "sys:exit": "'exit' in sys is a built-in function, not a model factory",
    "builtins:breakpoint": "'breakpoint' in builtins is a built-in function",
    "os:abort": "'abort' in os is a built-in function",
    "{factories_py}:exits": "called sys.exit()",
    "{factories_py}:exits_with_text": "called sys.exit('the factory gave up')",
    "{factories_py}:raises_base_exception": "raised BaseException: not an Exception",
    "{factories_py}:prints_and_returns_junk": "returned str, not a torch.nn.Module",
}


@pytest.mark.parametrize("source", list(FACTORIES))
def test_misbehaving_factories_end_in_one_line_and_keep_stdout_clean(sb, source):
    out = sb["root"] / "factory.onnx"
    result = run_main("convert", *fill([source], sb), "--input-shape", "1x4", "-o", out, "--json", cwd=sb["root"])
    assert FACTORIES[source] in error(result)
    assert result.stdout == "" and not out.exists()
