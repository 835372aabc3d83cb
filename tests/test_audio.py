"""Audio inputs: WAV files written by Python's `wave` module and by hand (PCM 8/16/24-bit, float,
stereo, other rates, non-PCM encodings), resampling and log-mel features against independent
references, and `--inputs speech.wav` through the command line."""

import struct
import wave

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from infertool.errors import InfertoolError
from infertool.inputs.audio import AudioPreprocess, load_audio, log_mel, read_wav, resample
from infertool.tensors import TensorSpec

from conftest import ROOT, cli, one_line_error
from onnx_models import image_classifier

SPEECH = ROOT / "examples" / "speech" / "speech.wav"


def write_pcm(path, samples: np.ndarray, rate: int, width: int = 2) -> None:
    """[frames, channels] floats in [-1, 1) -> a PCM WAV through the standard library's writer."""
    frames = samples if samples.ndim == 2 else samples[:, None]
    if width == 1:
        data = (np.round(frames * 127) + 128).astype(np.uint8).tobytes()
    elif width == 3:
        ints = np.round(frames * (2**23 - 1)).astype(np.int32).ravel()
        data = b"".join(struct.pack("<i", int(v))[:3] for v in ints)
    else:
        data = np.round(frames * (2 ** (8 * width - 1) - 1)).astype(f"<i{width}").tobytes()
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(frames.shape[1])
        handle.setsampwidth(width)
        handle.setframerate(rate)
        handle.writeframes(data)


def write_raw(path, tag: int, bits: int, payload: bytes, rate: int = 16000, channels: int = 1) -> None:
    """A WAV with any format tag (3: IEEE float, 7: µ-law, ...)."""
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * channels * bits // 8, channels * bits // 8, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(payload)) + payload
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def tone(freq: float, rate: int, seconds: float = 0.5) -> np.ndarray:
    return 0.5 * np.sin(2 * np.pi * freq * np.arange(int(rate * seconds)) / rate)


def test_pcm_widths_float_and_stereo_read_back(tmp_path):
    signal = tone(440, 8000)
    for width in (1, 2, 3):
        write_pcm(tmp_path / f"w{width}.wav", signal, 8000, width)
        channels, rate = read_wav(tmp_path / f"w{width}.wav")
        assert rate == 8000 and channels.shape == (1, len(signal))
        np.testing.assert_allclose(channels[0], signal, atol=2.0 / 2 ** (8 * width - 1))
    write_raw(tmp_path / "float.wav", 3, 32, signal.astype("<f4").tobytes(), 8000)
    np.testing.assert_array_equal(read_wav(tmp_path / "float.wav")[0][0], signal.astype(np.float32))
    write_pcm(tmp_path / "stereo.wav", np.stack([signal, -signal * 0.5], axis=1), 8000)
    channels, _ = read_wav(tmp_path / "stereo.wav")
    assert channels.shape == (2, len(signal))
    np.testing.assert_allclose(channels[1], -0.5 * signal, atol=1e-4)


def test_the_committed_espeak_wav_matches_the_standard_library_reader():
    with wave.open(str(SPEECH)) as handle:
        expected = np.frombuffer(handle.readframes(handle.getnframes()), "<i2") / 32768
        rate = handle.getframerate()
    channels, got_rate = read_wav(SPEECH)
    assert got_rate == rate == 8000
    np.testing.assert_array_equal(channels[0], expected.astype(np.float32))


def test_resampling_keeps_tones_and_removes_what_the_new_rate_cannot_hold():
    for rate_in, rate_out in ((22050, 16000), (8000, 16000), (48000, 16000)):
        got = resample(tone(1000, rate_in), rate_in, rate_out)
        want = tone(1000, rate_out)
        assert len(got) == len(want)
        inner = slice(200, -200)  # the edges see zeros beyond the signal
        assert np.max(np.abs(got[inner] - want[inner])) < 2e-3, (rate_in, rate_out)
    aliased = resample(tone(11000, 48000), 48000, 16000)  # above the new Nyquist (8 kHz)
    assert np.max(np.abs(aliased[200:-200])) < 0.01


def test_log_mel_matches_torch_stft_power_and_finds_the_tone():
    torch = pytest.importorskip("torch")
    from infertool.inputs.audio import _mel_filters

    signal = tone(1000, 16000, 1.0).astype(np.float32)
    pre = AudioPreprocess()
    features = log_mel(signal, 16000, 40, pre)
    assert features.shape == (40, 1 + len(signal) // 160)
    spectrum = torch.stft(torch.from_numpy(signal).double(), n_fft=512, hop_length=160, win_length=400,
                          window=torch.hann_window(400, dtype=torch.float64), center=True, pad_mode="reflect", return_complex=True)
    reference = np.log(np.maximum(_mel_filters(40, 512, 16000) @ (spectrum.abs() ** 2).numpy(), 1e-10))
    np.testing.assert_allclose(features, reference, atol=1e-3)
    edges = 700 * (10 ** (np.linspace(0, 2595 * np.log10(1 + 8000 / 700), 42) / 2595) - 1)
    assert abs(edges[1:-1][features[:, 50].argmax()] - 1000) < 100  # the loudest band is centred near the tone


def test_audio_fits_the_model_input(tmp_path):
    write_pcm(tmp_path / "a.wav", tone(300, 16000, 0.25), 16000)
    write_pcm(tmp_path / "b.wav", np.stack([tone(300, 22050, 0.5)] * 2, axis=1), 22050)
    notes: list[str] = []
    batch = load_audio([tmp_path / "a.wav", tmp_path / "b.wav"], TensorSpec("wave", "float32", ("batch", "samples")), AudioPreprocess(), notes)
    assert batch.shape == (2, 8000) and not batch[0, 4000:].any()  # padded to the longest
    assert any("mixed 2 channels" in n for n in notes) and any("resampled from 22050 Hz" in n for n in notes)
    fixed = load_audio([tmp_path / "b.wav"], TensorSpec("wave", "float32", (1, 1, 1000)), AudioPreprocess(), [])
    assert fixed.shape == (1, 1, 1000)
    features = load_audio([tmp_path / "a.wav"], TensorSpec("mel", "float32", ("batch", "frames", 64)), AudioPreprocess(features="logmel"), [])
    assert features.shape == (1, 26, 64)  # mels last, because the model fixes that axis
    with pytest.raises(InfertoolError, match="not an audio waveform input"):
        load_audio([tmp_path / "a.wav"], TensorSpec("image", "float32", (1, 3, 8, 8)), AudioPreprocess(), [])


def _audio_model(path, features: bool):
    """Mean over the last axis of a waveform [batch, samples] or features [batch, 80, frames]."""
    shape = ["batch", 80, "frames"] if features else ["batch", "samples"]
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["x"], ["y"], keepdims=0, axes=[-1])], "audio",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_run_takes_a_wav_and_saves_the_exact_inputs(tmp_path):
    model = _audio_model(tmp_path / "wave.onnx", features=False)
    done = cli("run", model, "--inputs", SPEECH, "--save-inputs", tmp_path / "in.npz", "-o", tmp_path / "out.npz", "--json")
    assert done.returncode == 0, done.stderr
    assert "resampled from 8000 Hz to 16000 Hz" in done.stderr
    saved = np.load(tmp_path / "in.npz")["x"]
    assert saved.shape == (1, 49522 * 2)
    again = cli("run", model, "--inputs", tmp_path / "in.npz", "-o", tmp_path / "again.npz")
    assert again.returncode == 0, again.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "again.npz")["y"], np.load(tmp_path / "out.npz")["y"])
    mel = cli("run", _audio_model(tmp_path / "mel.onnx", features=True), "--inputs", SPEECH, "--preprocess", "logmel", "--save-inputs", tmp_path / "mel_in")
    assert mel.returncode == 0, mel.stderr
    assert (tmp_path / "mel_in" / "input_0.pb").is_file()


def test_bad_audio_and_image_files_are_one_line_errors(tmp_path):
    model = _audio_model(tmp_path / "wave.onnx", features=False)
    write_raw(tmp_path / "mulaw.wav", 7, 8, bytes(range(256)))
    (tmp_path / "text.wav").write_text("not audio at all")
    write_pcm(tmp_path / "ok.wav", tone(300, 16000), 16000)
    (tmp_path / "cut.wav").write_bytes((tmp_path / "ok.wav").read_bytes()[:-4000])
    (tmp_path / "picture.png").write_text("not an image")
    cases = {
        "mulaw.wav": "µ-law-encoded, not PCM", "text.wav": "is not a WAV file", "cut.wav": "is truncated",
    }
    for name, message in cases.items():
        done = cli("run", model, "--inputs", tmp_path / name)
        assert done.returncode == 2 and message in one_line_error(done), (name, done.stderr)
    done = cli("run", image_classifier(tmp_path / "img.onnx"), "--inputs", tmp_path / "picture.png")
    assert done.returncode == 2 and "cannot read image" in one_line_error(done)
    done = cli("run", model, "--inputs", tmp_path / "ok.wav", "--preprocess", "paddleocr")
    assert done.returncode == 2 and "names an image preset" in one_line_error(done)
