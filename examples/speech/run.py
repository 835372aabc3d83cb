"""Streaming voice-activity detection (silero-VAD, real weights) on a committed speech WAV, and the CTC
case (PaddleOCR's PP-OCRv4 text recogniser) on generated text lines: task accuracy against ground
truth and latency per precision and backend.

    python examples/speech/run.py [--backends ort-cpu,trt,trt-rtx] [--out DIR] [--quick]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import onnx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from common import (  # noqa: E402
    CommandFailed,
    arguments,
    colours,
    environment_line,
    infertool,
    latency_row,
    model_file,
    noisy,
    pct,
    phrase,
    quantized,
    table,
    text_crop,
    usable_backends,
    variants,
    write_results,
)

from infertool import onnx_io  # noqa: E402
from infertool.backends import registry  # noqa: E402
from infertool.backends.base import RunnerOptions  # noqa: E402
from infertool.inputs.audio import read_wav, resample  # noqa: E402
from infertool.reporting import SilentReporter  # noqa: E402
from infertool.stats import Stats  # noqa: E402

HERE = Path(__file__).resolve().parent
RATE, CHUNK, CONTEXT = 16000, 512, 64  # silero-VAD at 16 kHz: 512 new samples a step, after 64 of the previous chunk
THRESHOLD, MIN_SPEECH_S, MIN_SILENCE_S = 0.5, 0.25, 0.1
VAD_PRECISIONS = {"fp32": "fp32", "fp16": "fp16", "int8": "int8-dynamic"}  # the state's batch axis is 1: no static calibration
VAD_INT8_COSINE = 0.95  # quantize's gate on the LSTM state for int8 (see vad's text)
CTC_AGREEMENT = 0.8  # a rescued recogniser must read 80 % of the lines as fp32 does (within 20 % of its exact-line rate)


# ---------------------------------------------------------------- voice activity, streamed


def waveform() -> np.ndarray:
    """speech.wav (8 kHz) as the model wants it, 16 kHz mono, through infertool's own reader."""
    channels, rate = read_wav(HERE / "speech.wav")
    return resample(channels.mean(axis=0), rate, RATE)


def stream(model: Path, backend: str, wave: np.ndarray) -> tuple[np.ndarray, Stats]:
    """Every 512-sample chunk through one Runner, the state carried from chunk to chunk: the speech
    probability per chunk and the latency of each step."""
    options = RunnerOptions()
    feeds = {"input": np.zeros((1, CONTEXT + CHUNK), np.float32), "state": np.zeros((2, 1, 128), np.float32), "sr": np.array(RATE, np.int64)}
    chosen = registry.get(backend)
    artifact = chosen.prepare(onnx_io.describe(model), options, {n: a.shape for n, a in feeds.items()}, SilentReporter())
    probabilities, times = [], []
    with chosen.open(artifact, options) as runner:
        context = np.zeros(CONTEXT, np.float32)
        for start in range(0, len(wave) - CHUNK + 1, CHUNK):
            chunk = wave[start : start + CHUNK]
            feeds["input"] = np.concatenate([context, chunk])[None].astype(np.float32)
            began = time.perf_counter_ns()
            outputs = runner.infer(feeds)
            times.append(time.perf_counter_ns() - began)
            feeds["state"] = outputs["stateN"].astype(np.float32)
            probabilities.append(float(outputs["output"].ravel()[0]))
            context = chunk[-CONTEXT:]
    return np.asarray(probabilities), Stats.from_ns(times[3:])  # the first steps warm the runtime up


def segments(probabilities: np.ndarray) -> list[tuple[float, float]]:
    """Speech where the probability passes THRESHOLD; gaps under MIN_SILENCE_S joined, bursts under MIN_SPEECH_S dropped."""
    step, found = CHUNK / RATE, []
    for index, speaking in enumerate(probabilities >= THRESHOLD):
        if speaking and found and index * step - found[-1][1] < MIN_SILENCE_S:
            found[-1] = (found[-1][0], (index + 1) * step)
        elif speaking:
            found.append((index * step, (index + 1) * step))
    return [s for s in found if s[1] - s[0] >= MIN_SPEECH_S]


def frame_scores(found: list[tuple[float, float]], truth: list[dict], seconds: float) -> tuple[float, float, float]:
    """Precision, recall and accuracy of speech / no speech on a 10 ms grid."""
    grid = np.arange(0, seconds, 0.01)
    said = np.zeros(len(grid), bool)
    heard = np.zeros(len(grid), bool)
    for segment in truth:
        said |= (grid >= segment["start"]) & (grid < segment["end"])
    for start, end in found:
        heard |= (grid >= start) & (grid < end)
    hits = float((said & heard).sum())
    return hits / max(heard.sum(), 1), hits / max(said.sum(), 1), float((said == heard).mean())


def evaluation_chunk(wave: np.ndarray, out: Path, model: Path) -> Path:
    """One real chunk, from the middle of the first sentence, with the state fp32 carries to it from
    the start of the clip (a zero state mid-speech is a state no stream has): quantize's and bench's inputs."""
    middle = int(1.2 * RATE) // CHUNK * CHUNK
    state = np.zeros((2, 1, 128), np.float32)
    with registry.get("ort-cpu").open(model, RunnerOptions()) as runner:
        for start in range(0, middle, CHUNK):
            chunk = np.concatenate([wave[max(start - CONTEXT, 0) : start] if start else np.zeros(CONTEXT, np.float32), wave[start : start + CHUNK]])
            state = runner.infer({"input": chunk[None].astype(np.float32), "state": state, "sr": np.array(RATE, np.int64)})["stateN"]
    target = out / "chunk.npz"
    np.savez(target, input=wave[middle - CONTEXT : middle + CHUNK][None].astype(np.float32), state=state.astype(np.float32), sr=np.array(RATE, np.int64))
    return target


def baselines(truth: list[dict], seconds: float) -> str:
    """What the trivial detectors score: never speech, always speech."""
    silent = frame_scores([], truth, seconds)[2]
    return f"Trivial baselines on this clip: all-silence {pct(silent)}, all-speech {pct(1 - silent)} frame accuracy."


def vad(args, backends: list[str], failures: list[str], log: Path) -> str:
    truth = json.loads((HERE / "speech.json").read_text())
    wave = waveform()
    model = model_file("silero-vad", "silero_vad_16k_op15.onnx")
    chunk = evaluation_chunk(wave, args.out, model)
    rows = []
    for precision in args.precisions:
        try:
            gate = ["--min-cosine", str(VAD_INT8_COSINE)] if precision == "int8" else []
            path, _ = quantized(model, VAD_PRECISIONS[precision], args.out, None, ["--eval-data", chunk, "--target", "ort", *gate], log)
        except CommandFailed as failure:
            failures.append(f"VAD {precision}: {failure.line}")
            continue
        for backend in backends:
            try:
                infertool("bench", path, "-b", backend, "--inputs", chunk, "--reference", model, *gate, "--iterations", "5" if args.quick else "50", "--duration", "0", log=log)
                probabilities, stats = stream(path, backend, wave)
            except (CommandFailed, Exception) as failure:  # a runtime that cannot run the graph
                failures.append(f"VAD {precision} {backend}: {getattr(failure, 'line', failure)}")
                continue
            found = segments(probabilities)
            precision_, recall, accuracy = frame_scores(found, truth["speech"], len(wave) / RATE)
            shown = "; ".join(f"{s:.2f}–{e:.2f}" for s, e in found)
            rows.append([VAD_PRECISIONS[precision], backend, len(found), shown, pct(precision_), pct(recall), pct(accuracy), stats.median, stats.p90, stats.p99])
    expected = "; ".join(f"{s['start']:.2f}–{s['end']:.2f}" for s in truth["speech"])
    return (
        "## Voice activity: silero-VAD, streamed\n\n"
        f"`silero_vad_16k_op15.onnx` (real weights from silero-vad) on `speech.wav` ({truth['seconds']:.2f} s, 8 kHz PCM, resampled to 16 kHz "
        f"by infertool; {truth['source']}): {len(wave) // CHUNK} chunks of {CHUNK} samples (+{CONTEXT} of context), the state carried from "
        f"each chunk to the next. True speech: {expected} s. Speech at probability ≥ {THRESHOLD}; scored on a 10 ms grid. "
        "int8 is `int8-dynamic --target ort` (Conv weights uint8 as onnxruntime's guidance has it, activations quantized at run time): "
        "static calibration needs batch-major inputs, and the state is [2, batch, 128]. quantize gates int8 on one chunk with the state "
        f"fp32 carries to it at cosine ≥ {VAD_INT8_COSINE} (int8 moves the LSTM state by 1–5 % a step; the frame accuracy against the "
        f"ground truth below is the task's verdict). {baselines(truth['speech'], len(wave) / RATE)}\n\n"
        + table(["precision", "backend", "segments", "found (s)", "precision", "recall", "accuracy", "median ms/chunk", "p90", "p99"], rows)
    )


# ---------------------------------------------------------------- the CTC case: text lines


def make_lines(folder: Path, count: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    texts = []
    for index in range(count):
        text = phrase(rng, 2)
        fg, bg = colours(rng)
        noisy(text_crop(text, int(rng.integers(22, 40)), fg, bg, int(rng.integers(3, 9))), rng, float(rng.uniform(0, 8))).save(folder / f"line_{index:04d}.png")
        texts.append(text)
    (folder / "truth.txt").write_text("\n".join(texts) + "\n")
    return texts


def alphabet(model: Path) -> list[str]:
    """The recogniser's classes: CTC blank, the characters in its metadata, then the space."""
    proto = onnx.load(model, load_external_data=False)
    characters = next(p.value for p in proto.metadata_props if p.key == "character").splitlines()
    return ["<blank>", *characters, " "]


def greedy_ctc(scores: np.ndarray, classes: list[str]) -> str:
    """Best class per time step, repeats collapsed, blanks dropped."""
    best = scores.argmax(axis=1)
    keep = (best != 0) & np.concatenate([[True], best[1:] != best[:-1]])
    return "".join(classes[i] for i in best[keep]).strip()


def edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (x != y))
    return row[-1]


def ctc(args, backends: list[str], failures: list[str], log: Path) -> str:
    model = model_file("rapidocr-onnxruntime", "ch_PP-OCRv4_rec_infer.onnx")
    classes = alphabet(model)
    lines, calibration = args.out / "lines", args.out / "lines_calib"
    texts = make_lines(lines, 12 if args.quick else 60, seed=3)
    make_lines(calibration, 4 if args.quick else 24, seed=4)
    inputs = args.out / "lines.npz"
    preset = ["--preprocess", "paddleocr-rec", "--criterion", "ctc"]  # judged by the decoded text, not the softmax values
    infertool("run", model, "-b", backends[0], "--inputs", lines, *preset[:2], "--save-inputs", inputs, "-o", args.out / "lines_fp32.npz", "--force", log=log)
    timing = ["--iterations", "5", "--duration", "0", "--warmup", "1"] if args.quick else ["--iterations", "50", "--duration", "1", "--warmup", "3"]
    rows = []
    graphs = []
    for precision in args.precisions:
        try:
            graphs += variants(model, precision, args.out, calibration, ["--eval-data", inputs, *preset], log, args.budget, ("--min-top1", str(CTC_AGREEMENT)))
        except CommandFailed as failure:
            failures.append(f"CTC {precision}: {failure.line}")
    for precision, _, name, path, _ in graphs:
        try:
            for backend in backends:
                target = args.out / f"lines.{name}.{backend}.npz"
                infertool("run", path, "-b", backend, "--inputs", inputs, "-o", target, "--force", log=log)
                speed = latency_row(infertool("bench", path, "-b", backend, "--inputs", inputs, "--batch", "1", "--reference", model, *timing, log=log)["rows"][0])
                decoded = [greedy_ctc(s, classes) for s in next(iter(np.load(target).values()))]
                errors = sum(edit_distance(d, t) for d, t in zip(decoded, texts))
                exact = float(np.mean([d == t for d, t in zip(decoded, texts)]))
                wrong = next((f"`{d}` for `{t}`" for d, t in zip(decoded, texts) if d != t), "-")
                rows.append([precision, backend, pct(exact), pct(errors / sum(map(len, texts))), wrong, speed["median"], speed["p90"]])
        except CommandFailed as failure:
            failures.append(f"CTC {precision}: {failure.line}")
    return (
        "## The CTC case: PaddleOCR PP-OCRv4 text recogniser\n\n"
        f"`ch_PP-OCRv4_rec_infer.onnx` (real weights from rapidocr-onnxruntime, {len(classes)} classes) on {len(texts)} generated text "
        "lines, preset `paddleocr-rec` (48x320, right-padded); greedy CTC decoding (best class per step, repeats collapsed, blanks "
        "dropped). Character error rate = edit distance / characters of the truth; trivial baseline: an empty reading, 0 % exact lines, 100 % character error rate. quantize judges each precision by the decoded "
        "text (`--criterion ctc`: every line read as fp32 reads it); where int8 fails, `debug precision` (the same criterion, "
        f"lines read alike ≥ {CTC_AGREEMENT:.0%}) ranks the Conv / MatMul nodes by what each one quantized alone does to the output, "
        "bisects the ranking and prunes, and `quantize --exclude-nodes @keep` writes the rescued graph.\n\n"
        + table(["precision", "backend", "exact lines", "character error rate", "first miss", "median ms (batch 1)", "p90 ms"], rows)
    )


def main() -> None:
    args = arguments(__doc__.splitlines()[0], "speech")
    log = args.out / "commands.log"
    log.write_text("")
    backends, skipped = usable_backends(args.backends)
    failures = list(skipped)
    sections = [f"{environment_line()}.\n", vad(args, backends, failures, log), ctc(args, backends, failures, log)]
    if failures:
        sections += ["## Not run\n", "\n".join(f"- {f}" for f in failures) + "\n"]
    write_results(args.out / "results.md", "Speech (streaming VAD) and CTC text recognition, fp32 / fp16 / int8", sections)


if __name__ == "__main__":
    main()
