"""What a user reads: tables that fit the terminal without cutting a number, --quiet, one vocabulary
across commands, machine output on stdout, honest help. CLI runs in this process (conftest.cli), a closed pipe in a subprocess."""

import csv
import io
import json
import re
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest
from rich.console import Console

from infertool.cli.show import grid as show
from infertool.onnx_io import precision_label
from infertool.present import numbers as formats

from conftest import MODELS, ROOT, cli, one_line_error
from onnx_models import image_classifier, mlp, two_inputs

FAST = ["--warmup", "2", "--iterations", "10", "--duration", "0"]
COMMANDS = ("convert", "quantize", "build-engine", "run", "bench", "doctor")


def toy_cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    """The CLI with the toy backend (onnx's reference evaluator) registered: a second backend."""
    return cli(*args, env=env, imports=("toy_backend",))


def fits(text: str, width: int) -> None:
    """Nothing cut (rich marks a cut with …) and no line wider than the terminal."""
    assert "…" not in text, text
    wide = [line for line in text.splitlines() if len(line.rstrip()) > width]
    assert not wide, "\n".join(wide)


def test_every_command_fits_80_columns(tmp_path):
    model, classifier = mlp(tmp_path / "m.onnx"), image_classifier(tmp_path / "c.onnx")
    shutil.copy(model, tmp_path / "reference.onnx")
    (tmp_path / "labels.txt").write_text("".join(f"a rather long class label number {i}\n" for i in range(4)))
    narrow = {"COLUMNS": "80"}
    outputs = [
        toy_cli("bench", model, "-b", "ort-cpu", "-b", "onnx-reference", "--batch", "1,4", *FAST, "--reference", tmp_path / "reference.onnx",
                env=narrow),
        cli("run", classifier, "--top-k", "3", "--labels", tmp_path / "labels.txt", "--input-shape", "2x3x8x8", env=narrow),
        cli("quantize", model, "-p", "int8", "--calib-data", "random", "-o", tmp_path / "m8.onnx", env=narrow),
        cli("convert", f"{MODELS}:cnn", "--input-shape", "1x3x8x8", "--exporter", "torchscript", "-o", tmp_path / "cnn.onnx", env=narrow),
        cli("doctor", env=narrow),
    ]
    for result in outputs:
        assert result.returncode == 0, result.stderr
        fits(result.stdout, 80)
    bench, run, quantize, convert, doctor = (r.stdout for r in outputs)
    assert "speedup" in bench and "output agreement" in bench and "onnx-reference" in bench
    assert re.search(r"label number 3 +\d", run), run  # labels and scores whole
    assert "int8-qdq" in quantize and "cosine" in convert and "backends" in doctor


@pytest.mark.parametrize("width", [24, 40, 56, 72, 100, 140])
def test_tables_never_cut_a_number_at_any_width(width):
    columns = [show.Column("backend", show.TEXT), show.Column("inputs", show.TEXT), show.Column("median ms"),
               show.Column("p90", drop=2), show.Column("p99", drop=1), show.Column("samples/s")]
    rows = [["ort-cpu", "input_ids 8x128, attention_mask 8x128", formats.ms(0.0131234), formats.ms(16.123456), formats.ms(1234.5678),
             formats.sig(627099.3, thousands=True)],
            ["onnx-reference", "input_ids 1x32, attention_mask 1x32", formats.ms(0.5), formats.ms(7.25), formats.ms(99999.4), "1,234.5"]]
    console = Console(width=width, file=io.StringIO(), color_system=None)
    show.grid(console, "a title long enough to wrap at narrow widths", columns, rows, "a caption")
    text = console.file.getvalue()
    fits(text, width)
    numbers = [cell for row in rows for cell in row[2:]]
    shown = {word for line in text.splitlines() for word in line.split()}
    assert "0.013123" in shown and "627,099" in shown  # the numbers kept at every width
    assert all(n in shown for n in numbers[:1]), text


def test_numbers_have_5_significant_digits_one_style():
    assert [formats.ms(v) for v in (0.013123456, 16.1234, 1234.567, 123456.7, 9.999996, 0.0)] == [
        "0.013123", "16.123", "1234.6", "123457", "10.000", "0"]
    assert formats.sig(627099.3, thousands=True) == "627,099" and formats.sig(7647.71, thousands=True) == "7,647.7"
    assert [formats.error(v) for v in (0.0, 1.2345e-5, 0.0839)] == ["0", "1.23e-05", "8.39e-02"]


def test_piped_output_respects_columns(tmp_path):
    model = mlp(tmp_path / "m.onnx")
    wide = cli("bench", model, *FAST)
    narrow = cli("bench", model, *FAST, env={"COLUMNS": "50"})
    assert max(len(line) for line in wide.stdout.splitlines()) > 50
    fits(narrow.stdout, 50)


def test_quiet_prints_warnings_and_errors_only(tmp_path):
    model = mlp(tmp_path / "m.onnx")
    bench = cli("bench", model, *FAST, "--json", tmp_path / "b.json", "-q")
    assert bench.returncode == 0 and (tmp_path / "b.json").exists()
    assert all(line.startswith("warning:") for line in bench.stderr.splitlines()), bench.stderr
    quantize = cli("quantize", model, "-p", "bf16", "-o", tmp_path / "m16.onnx", "--json", tmp_path / "q.json", "-q")
    assert quantize.returncode == 0 and quantize.stderr == "", quantize.stderr
    doctor = cli("doctor", "--json", tmp_path / "d.json", "-q")
    assert doctor.returncode == 0 and doctor.stderr == "" and "backends" in doctor.stdout
    # token ids past the embedding table: onnxruntime logs the failure itself, then raises
    failing = ["bench", two_inputs(tmp_path / "two.onnx"), "--input-shape", "ids:1x4", "-q"]
    quiet = cli(*failing)
    assert quiet.returncode == 2 and quiet.stderr.splitlines() == [one_line_error(quiet)], quiet.stderr
    assert "[E:onnxruntime" in cli(*failing, "--verbose").stderr


def test_verbose_lets_third_party_logs_through():
    from infertool import quiet

    try:
        quiet.let_through(True)
        assert quiet.ort_log_severity() == 2
        with quiet.quiet(), pytest.warns(UserWarning):
            import warnings

            warnings.warn("a library's warning", UserWarning, stacklevel=1)
    finally:
        quiet.let_through(False)
    assert quiet.ort_log_severity() == 4


def test_ci_logs_get_start_lines_and_a_heartbeat(tmp_path):
    model = mlp(tmp_path / "m.onnx")
    result = cli("bench", model, "--warmup", "2", "--duration", "0.8", "--json", tmp_path / "b.json", env={"INFERTOOL_HEARTBEAT": "0.2"})
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    start = lines.index("… ort-cpu batch 1 end-to-end: measuring")
    assert any(line.startswith("… ort-cpu batch 1 end-to-end: measuring: ") and "done" in line for line in lines[start + 1 :]), result.stderr
    assert any(line.startswith("✓ ort-cpu batch 1 end-to-end: measuring") for line in lines[start:])


def test_machine_output_on_stdout_one_at_a_time(tmp_path):
    model = two_inputs(tmp_path / "two.onnx")
    result = cli("bench", model, *FAST, "--input-shape", "ids:1x4,1x8", "--int-range", "0:50", "--threads", "1", "--csv", "-")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["input_shapes"] for r in rows] == ["ids:1x4,scale:1x1", "ids:1x8,scale:1x1"]
    assert {r["threads"] for r in rows} == {"1"} and rows[0]["model"] == str(model) and len(rows[0]["sha256"]) == 64
    assert rows[0]["timestamp"].endswith("+00:00")
    markdown = cli("bench", model, *FAST, "--int-range", "0:50", "--input-shape", "ids:1x4", "--markdown")
    assert markdown.stdout.startswith("### infertool bench") and "| ids 1x4, scale 1x1 |" in markdown.stdout
    both = cli("bench", model, *FAST, "--json", "--csv")
    assert both.returncode == 2 and "--json and --csv both write to stdout" in one_line_error(both)
    to_txt = cli("bench", model, *FAST, "--int-range", "0:50", "--input-shape", "ids:1x4", "--json", tmp_path / "out.txt")
    assert to_txt.returncode == 0, to_txt.stderr
    assert json.loads((tmp_path / "out.txt").read_text())["schema"] == "infertool.bench/1"


def test_help_reads_cleanly():
    for command in ("", *COMMANDS):
        result = cli(*([command] if command else []), "--help", env={"COLUMNS": "200"})
        assert result.returncode == 0, result.stderr
        text = result.stdout
        assert not re.search(r"\S \.(\s|$)", text), (command, re.findall(r".{30}\S \.", text))
        for leak in ("<bool>", "<list", "<path>", "<str>", "<int", "<float"):
            assert leak not in text, (command, leak)
    bench = cli("bench", "--help", env={"COLUMNS": "200"}).stdout
    assert "[default: ORT's choice]" in bench and "not yet run on real TensorRT" in bench
    assert "--trt-precision" not in bench and "--input-data" not in bench
    assert "[default: ort-cpu; engines: their builder's]" in cli("run", "--help", env={"COLUMNS": "200"}).stdout
    assert "Not yet run on real TensorRT" in cli("build-engine", "--help", env={"COLUMNS": "200"}).stdout


def test_one_vocabulary_with_old_spellings_kept(tmp_path):
    model = mlp(tmp_path / "m.onnx")
    engines = ("-b", "ort-cpu", "-b", "trt-rtx", "--skip-unavailable")  # -p is trt-rtx's option: refused on a bench without it
    report = json.loads(cli("bench", model, *engines, *FAST, "--trt-precision", "fp16", "--input-data", "zeros", "--json").stdout)
    assert report["settings"]["engine"]["precision"] == "fp16" and report["settings"]["inputs"]["generator"] == "zeros"
    now = json.loads(cli("bench", model, *engines, *FAST, "-p", "fp16", "--inputs", "zeros", "--json").stdout)
    assert now["settings"]["engine"] == report["settings"]["engine"] and now["settings"]["inputs"] == report["settings"]["inputs"]
    twice = cli("bench", model, "--trt-precision", "fp16", "-p", "fp32")
    assert twice.returncode == 2 and "old spelling of --precision" in one_line_error(twice)
    zeros = cli("run", model, "--inputs", "zeros", "--json")
    assert zeros.returncode == 0 and json.loads(zeros.stdout)["outputs"][0]["max"] == 0
    calib = cli("quantize", model, "-p", "int8", "--calib-data", "zeros", "-o", tmp_path / "q.onnx")
    assert calib.returncode == 2 and "--calib-data zeros cannot work here" in one_line_error(calib)


def test_bench_sweeps_shapes_of_any_dynamic_axis(tmp_path):
    model = two_inputs(tmp_path / "two.onnx")
    common = [*FAST, "--int-range", "0:50", "--json"]
    listed = json.loads(cli("bench", model, "--input-shape", "ids:1x4,1x8", "--batch", "1,2", *common).stdout)
    assert [r["input_shapes"]["ids"] for r in listed["rows"]] == [[1, 4], [2, 4], [1, 8], [2, 8]]
    assert all(r["agreement"]["passed"] and r["speedup"] == 1.0 for r in listed["rows"])
    sets = json.loads(cli("bench", model, "--shapes", "ids:1x4,scale:1x1", "--shapes", "ids:3x6,scale:3x1", *common).stdout)
    assert [r["input_shapes"] for r in sets["rows"]] == [{"ids": [1, 4], "scale": [1, 1]}, {"ids": [3, 6], "scale": [3, 1]}]
    table = cli("bench", model, "--input-shape", "ids:1x4", "--input-shape", "ids:1x8", *FAST, "--int-range", "0:50")
    assert "ids 1x4, scale 1x1" in table.stdout and "ids 1x8, scale 1x1" in table.stdout
    one = cli("run", model, "--input-shape", "ids:1x4,1x8")
    assert one.returncode == 2 and "only bench sweeps shapes" in one_line_error(one)
    np.savez(tmp_path / "in.npz", ids=np.zeros((1, 4), np.int64), scale=np.ones((1, 1), np.float32))
    with_file = cli("bench", model, "--input-shape", "ids:1x4,1x8", "--inputs", tmp_path / "in.npz")
    assert with_file.returncode == 2 and "shape sweep needs generated inputs" in one_line_error(with_file)


def test_skip_unavailable_runs_what_can_run(tmp_path):
    model = mlp(tmp_path / "m.onnx")
    refused = cli("bench", model, "-b", "ort-cpu", "-b", "trt", *FAST)
    assert refused.returncode == 2 and "backend trt is unavailable" in one_line_error(refused)
    result = cli("bench", model, "-b", "ort-cpu", "-b", "trt", "--skip-unavailable", *FAST, "--markdown", tmp_path / "b.md")
    assert result.returncode == 0, result.stderr
    assert "skipped trt:" in result.stdout and "Skipped trt:" in (tmp_path / "b.md").read_text()
    report = json.loads(cli("bench", model, "-b", "trt", "-b", "ort-cpu", "--skip-unavailable", *FAST, "--json").stdout)
    assert [r["backend"] for r in report["rows"]] == ["ort-cpu"] and report["skipped"][0]["backend"] == "trt"
    assert "TensorRT" in report["skipped"][0]["reason"]
    nothing = cli("bench", model, "-b", "trt", "--skip-unavailable")
    assert nothing.returncode == 2 and "none of the backends can run here" in one_line_error(nothing)


def test_agreement_table_leaves_out_the_reference_against_itself(tmp_path):
    model = mlp(tmp_path / "m.onnx")
    itself = cli("bench", model, *FAST)
    assert "output agreement" not in itself.stdout and "GPU" not in itself.stdout and "speedup" not in itself.stdout
    shutil.copy(model, tmp_path / "fp32.onnx")
    report = json.loads(cli("bench", model, *FAST, "--json").stdout)
    other = json.loads(cli("bench", model, *FAST, "--reference", tmp_path / "fp32.onnx", "--json").stdout)
    assert report["rows"][0]["agreement"]["self_check"] and not other["rows"][0]["agreement"]["self_check"]
    assert "output agreement" in cli("bench", model, *FAST, "--reference", tmp_path / "fp32.onnx").stdout


def test_noise_advice_works_on_small_machines(tmp_path):
    from infertool.backends import registry
    from infertool.onnx_io import describe
    from infertool.pipelines.bench import BenchOptions, _notes
    from infertool.records.bench import BenchRow
    from infertool.stats import Stats

    noisy = Stats.from_ns([10_000, 90_000] * 20)
    row = BenchRow("ort-cpu", 1, "fp32", "end_to_end", {"end_to_end": noisy}, {}, {"x": [1, 16]}, {"intra_op_threads": None})
    _, warnings = _notes([describe(mlp(tmp_path / "m.onnx"))], [registry.get("ort-cpu")], [row], BenchOptions())
    assert len(warnings) == 1 and "--threads 1" in warnings[0] and "more iterations will not" in warnings[0]
    assert "raise --iterations" not in warnings[0]


def test_prec_column_tells_int8_graphs_apart(tmp_path):
    model = mlp(tmp_path / "m.onnx")
    labels = {}
    for name, args in {"qdq": ["-p", "int8"], "ort": ["-p", "int8", "--target", "ort"], "dyn": ["-p", "int8-dynamic", "--target", "ort"]}.items():
        result = cli("quantize", model, *args, "--calib-data", "random", "-o", tmp_path / f"{name}.onnx", "--json")
        assert result.returncode == 0, result.stderr
        labels[name] = precision_label(onnx.load(str(tmp_path / f"{name}.onnx")), "int8")
        assert "--target" in " ".join(json.loads(result.stdout)["notes"]) or name == "ort"
    assert labels == {"qdq": "int8-qdq", "ort": "int8-ort", "dyn": "int8-dyn"}
    bench = cli("bench", tmp_path / "qdq.onnx", *FAST, "--reference", model, env={"COLUMNS": "80"})
    assert bench.returncode == 0, bench.stderr
    assert "int8-qdq" in bench.stdout and "TensorRT-shaped int8 Q/DQ graph" in bench.stdout.replace("\n", " ")


def test_doctor_hints_say_what_needs_an_nvidia_gpu():
    report = json.loads(cli("doctor", "--json").stdout)
    hints = {c["name"]: c["hint"] for c in report["components"]}
    assert "NVIDIA GPU" in hints["tensorrt"]
    reasons = {b["name"]: b["reason"] for b in report["backends"]}
    assert "TensorRT libraries" in reasons["ort-trt"] and "not only [gpu]" in reasons["ort-trt"]


def test_documentation_references_exist():
    for doc in (ROOT / "README.md", ROOT / "benchmarks" / "README.md", ROOT / "docs" / "architecture.md", ROOT / "tests" / "fakes" / "README.md"):
        text = doc.read_text()
        for target in re.findall(r"\]\(([^)#]+)\)", text):
            if not target.startswith("http"):
                assert (doc.parent / target).resolve().exists(), (doc, target)
        for script in re.findall(r"(?:python3? |^)((?:benchmarks|examples|tests)/[\w/.-]+\.(?:py|sh))", text, re.MULTILINE):
            assert (ROOT / script).exists(), (doc, script)
        assert "../" not in re.sub(r"\]\([^)]*\)", "", text), doc  # no path outside the repository
        assert "ARCHITECTURE.md" not in text, doc


def test_a_closed_stdout_keeps_what_was_measured(tmp_path):
    """`bench ... --json out.json | head -1`: the reader goes away before the tables are printed."""
    model = mlp(tmp_path / "m.onnx")
    command = [sys.executable, "-m", "infertool", "bench", str(model), "--warmup", "1", "--iterations", "3", "--duration", "0", "--json", str(tmp_path / "out.json")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    process.stdout.readline()
    process.stdout.close()  # as `head -1` does
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 141, stderr  # 128 + SIGPIPE, as a shell shows a tool whose pipe closed
    assert b"Traceback" not in stderr and b"error" not in stderr
    assert json.loads((tmp_path / "out.json").read_text())["rows"]
