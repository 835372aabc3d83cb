"""Audio files -> tensors: WAV (PCM or IEEE float) read without extra packages, mixed to mono,
resampled to the model's rate (band-limited, Kaiser-windowed sinc), as a waveform or log-mel features."""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from infertool.dtypes import is_float, numpy_dtype
from infertool.errors import InfertoolError
from infertool.files import read_bytes
from infertool.tensors import TensorSpec, format_shape

AUDIO_SUFFIXES = (".wav", ".wave")
PCM, IEEE_FLOAT, EXTENSIBLE = 1, 3, 0xFFFE
FORMAT_NAMES = {2: "Microsoft ADPCM", 6: "A-law", 7: "µ-law", 17: "IMA ADPCM", 49: "GSM 6.10", 80: "MPEG", 85: "MP3"}
CONVERT_HINT = "convert it to PCM, e.g. sox in.wav -e signed-integer -b 16 out.wav (or ffmpeg -i in.wav -c:a pcm_s16le out.wav)"
DEFAULT_MELS = 80
WAV_LIMIT = 4 * 2**30  # bytes of one WAV file (RIFF sizes are 32-bit)


@dataclass(frozen=True)
class AudioPreprocess:
    """Audio -> tensor: mono, resampled to `sample_rate`, then the waveform or log-mel features
    (25 ms Hann window, 10 ms hop, HTK mel bands, natural log of the power, floored at 1e-10)."""

    sample_rate: int = 16000
    features: str = "waveform"  # waveform | logmel
    window_ms: float = 25.0
    hop_ms: float = 10.0

    def to_dict(self) -> dict:
        return {"sample_rate": self.sample_rate, "features": self.features, "window_ms": self.window_ms, "hop_ms": self.hop_ms}


AUDIO_PRESETS = {"waveform": AudioPreprocess(), "logmel": AudioPreprocess(features="logmel")}


def audio_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)


# ---------------------------------------------------------------- reading WAV


def _chunks(data: bytes, path: Path) -> dict[bytes, bytes]:
    if len(data) < 12 or data[:4] not in (b"RIFF", b"RF64") or data[8:12] != b"WAVE":
        raise InfertoolError(f"{path} is not a WAV file (no RIFF/WAVE header)", hint="give a .wav file (PCM), or .npz / .npy arrays")
    chunks, offset = {}, 12
    while offset + 8 <= len(data):
        tag, size = data[offset : offset + 4], struct.unpack("<I", data[offset + 4 : offset + 8])[0]
        body = data[offset + 8 : offset + 8 + size]
        if tag == b"data" and len(body) < size and size != 0xFFFFFFFF:
            raise InfertoolError(f"{path} is truncated: its data chunk declares {size} bytes, the file holds {len(body)}", hint="re-export the file")
        chunks.setdefault(tag, body)
        offset += 8 + size + (size & 1)
    for tag in (b"fmt ", b"data"):
        if tag not in chunks:
            raise InfertoolError(f"{path} has no '{tag.decode().strip()}' chunk", hint="re-export the file as a PCM WAV")
    return chunks


def _decode(body: bytes, tag: int, bits: int, path: Path) -> np.ndarray:
    """Interleaved samples -> float32 in [-1, 1)."""
    width = bits // 8
    if tag == IEEE_FLOAT and bits in (32, 64):
        return np.frombuffer(body[: len(body) - len(body) % width], dtype=f"<f{width}").astype(np.float32)
    if tag == PCM and bits == 8:
        return (np.frombuffer(body, dtype=np.uint8).astype(np.float32) - 128) / 128
    if tag == PCM and bits in (16, 32):
        return np.frombuffer(body[: len(body) - len(body) % width], dtype=f"<i{width}").astype(np.float32) / 2 ** (bits - 1)
    if tag == PCM and bits == 24:
        raw = np.frombuffer(body[: len(body) - len(body) % 3], dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        value = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
        return (np.where(value >= 1 << 23, value - (1 << 24), value)).astype(np.float32) / 2**23
    kind = "float" if tag == IEEE_FLOAT else "PCM"
    raise InfertoolError(f"{path}: {bits}-bit {kind} samples are not supported", hint="use 8/16/24/32-bit PCM or 32/64-bit float")


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """(samples as float32 [channels, frames], sample rate) of a PCM or IEEE-float WAV."""
    data = read_bytes(path, "audio file", WAV_LIMIT, hint="give a WAV file on disk")  # a regular file: never a FIFO
    chunks = _chunks(data, path)
    fmt = chunks[b"fmt "]
    if len(fmt) < 16:
        raise InfertoolError(f"{path} has a malformed 'fmt' chunk ({len(fmt)} bytes)", hint="re-export the file as a PCM WAV")
    tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", fmt[:16])
    if tag == EXTENSIBLE and len(fmt) >= 26:
        tag = struct.unpack("<H", fmt[24:26])[0]  # the sub-format GUID starts with the format tag
    if tag not in (PCM, IEEE_FLOAT):
        name = FORMAT_NAMES.get(tag, f"format tag {tag}")
        raise InfertoolError(f"{path} is {name}-encoded, not PCM", hint=CONVERT_HINT)
    if channels < 1 or rate < 1:
        raise InfertoolError(f"{path} declares {channels} channels at {rate} Hz", hint="re-export the file")
    samples = _decode(chunks[b"data"], tag, bits, path)
    frames = len(samples) // channels
    if frames == 0:
        raise InfertoolError(f"{path} holds no audio samples", hint="give a WAV with sound in it")
    return samples[: frames * channels].reshape(frames, channels).T.copy(), rate


# ---------------------------------------------------------------- resampling and features


def resample(wave: np.ndarray, rate_in: int, rate_out: int, zero_crossings: int = 16, beta: float = 8.6) -> np.ndarray:
    """Band-limited resampling of a 1-D signal: each output sample is a Kaiser-windowed sinc sum over
    its input neighbours, the sinc cut off at the lower of the two Nyquist frequencies."""
    if rate_in == rate_out:
        return wave.astype(np.float32, copy=False)
    g = math.gcd(rate_in, rate_out)
    up, down = rate_out // g, rate_in // g
    count = -(-len(wave) * up // down)
    cutoff = min(1.0, rate_out / rate_in)
    half = math.ceil(zero_crossings / cutoff)
    offsets = np.arange(-half + 1, half + 1)
    source = wave.astype(np.float64)
    out = np.empty(count, np.float32)
    for start in range(0, count, 16384):  # blocks keep the tap matrix small
        index = np.arange(start, min(start + 16384, count))
        base = index * down // up
        taps = base[:, None] + offsets[None, :]
        distance = (index * down / up)[:, None] - taps
        window = np.i0(beta * np.sqrt(np.clip(1 - (distance / half) ** 2, 0, None))) / np.i0(beta)
        kernel = cutoff * np.sinc(cutoff * distance) * window * ((taps >= 0) & (taps < len(wave)))
        out[index] = (source[np.clip(taps, 0, len(wave) - 1)] * kernel).sum(axis=1)
    return out


def _mel_filters(n_mels: int, n_fft: int, rate: int) -> np.ndarray:
    """Triangular filters on the HTK mel scale from 0 Hz to Nyquist: [n_mels, n_fft // 2 + 1]."""
    mel = lambda hz: 2595 * np.log10(1 + hz / 700)  # noqa: E731
    hz = lambda m: 700 * (10 ** (m / 2595) - 1)  # noqa: E731
    edges = hz(np.linspace(mel(0.0), mel(rate / 2), n_mels + 2))
    bins = np.linspace(0, rate / 2, n_fft // 2 + 1)
    rising = (bins[None, :] - edges[:-2, None]) / (edges[1:-1, None] - edges[:-2, None])
    falling = (edges[2:, None] - bins[None, :]) / (edges[2:, None] - edges[1:-1, None])
    return np.maximum(0, np.minimum(rising, falling))


def log_mel(wave: np.ndarray, rate: int, n_mels: int, pre: AudioPreprocess) -> np.ndarray:
    """[n_mels, frames] log-mel power of a 1-D signal; frames are centred (reflect padding), so
    there are 1 + len // hop of them."""
    window = round(rate * pre.window_ms / 1000)
    hop = round(rate * pre.hop_ms / 1000)
    n_fft = 1 << (window - 1).bit_length()
    padded = np.pad(wave.astype(np.float64), n_fft // 2, mode="reflect" if len(wave) > n_fft // 2 else "constant")
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    hann = np.zeros(n_fft)
    left = (n_fft - window) // 2
    hann[left : left + window] = np.hanning(window + 1)[:-1]  # periodic Hann, as torch.hann_window
    power = np.abs(np.fft.rfft(frames * hann, axis=1)) ** 2
    return np.log(np.maximum(power @ _mel_filters(n_mels, n_fft, rate).T, 1e-10)).T.astype(np.float32)


# ---------------------------------------------------------------- files -> the model's input


def _mono(path: Path, pre: AudioPreprocess, notes: list[str]) -> np.ndarray:
    channels, rate = read_wav(path)
    if len(channels) > 1:
        notes.append(f"{path.name}: mixed {len(channels)} channels to mono (their mean)")
    wave = channels.mean(axis=0)
    if rate != pre.sample_rate:
        notes.append(f"{path.name}: resampled from {rate} Hz to {pre.sample_rate} Hz (give --sample-rate if the model wants another rate)")
        wave = resample(wave, rate, pre.sample_rate)
    return wave


def _fit(waves: list[np.ndarray], length: int | None, notes: list[str]) -> np.ndarray:
    """Stack waves, zero-padded at the end to the longest (or cut / padded to a fixed `length`)."""
    target = length or max(len(w) for w in waves)
    if length is not None and any(len(w) != length for w in waves):
        notes.append(f"waveforms cut or zero-padded at the end to the model's {length} samples")
    elif len({len(w) for w in waves}) > 1:
        notes.append(f"waveforms zero-padded at the end to the longest, {target} samples")
    batch = np.zeros((len(waves), target), np.float32)
    for row, wave in zip(batch, waves):
        row[: min(target, len(wave))] = wave[:target]
    return batch


def _check_input(spec: TensorSpec, pre: AudioPreprocess) -> None:
    shape = spec.shape
    if pre.features == "waveform":
        fits = len(shape) in (1, 2) or (len(shape) == 3 and (shape[1] == 1 or not isinstance(shape[1], int)))
        wanted, hint = "[samples], [batch, samples] or [batch, 1, samples]", "pass --preprocess logmel for a model that wants features"
    else:
        fits = len(shape) == 3
        wanted, hint = "[batch, mels, frames] or [batch, frames, mels]", "drop --preprocess logmel to feed the waveform"
    if not (fits and is_float(spec.dtype)):
        raise InfertoolError(f"input '{spec.name}' ({spec.dtype} {format_shape(shape)}) is not an audio {pre.features} input {wanted}", hint=hint)


def _fit_frames(features: list[np.ndarray], frames: int | None) -> np.ndarray:
    """Stack [mels, frames] features, padded with the log floor to the longest (or cut / padded to a fixed count)."""
    target = frames or max(f.shape[1] for f in features)
    floor = np.float32(np.log(1e-10))
    return np.stack([np.pad(f[:, :target], ((0, 0), (0, target - min(target, f.shape[1]))), constant_values=floor) for f in features])


def load_audio(files: list[Path], spec: TensorSpec, pre: AudioPreprocess, notes: list[str]) -> np.ndarray:
    """Files -> the model's audio input: a waveform [samples], [batch, samples] or [batch, 1, samples],
    or log-mel features [batch, mels, frames] (or [batch, frames, mels] when the model fixes the last axis)."""
    rank, shape = len(spec.shape), spec.shape
    _check_input(spec, pre)
    if rank == 1 and len(files) > 1:
        raise InfertoolError(f"input '{spec.name}' takes one waveform ({format_shape(shape)}), got {len(files)} files", hint="give one .wav file")
    waves = [_mono(f, pre, notes) for f in files]
    if pre.features == "waveform":
        length = shape[-1] if isinstance(shape[-1], int) else None
        batch = _fit(waves, length, notes)
        array = batch[0] if rank == 1 else batch[:, None, :] if rank == 3 else batch
    else:
        mels_last = isinstance(shape[2], int) and not isinstance(shape[1], int)
        n_mels = shape[2] if mels_last else shape[1] if isinstance(shape[1], int) else DEFAULT_MELS
        fixed_frames = shape[1] if mels_last else shape[2]
        features = [log_mel(w, pre.sample_rate, n_mels, pre) for w in waves]
        array = _fit_frames(features, fixed_frames if isinstance(fixed_frames, int) else None)
        array = array.transpose(0, 2, 1) if mels_last else array
    return np.ascontiguousarray(array).astype(numpy_dtype(spec.dtype))
