"""How speech.wav and speech.json were made (once; the results are committed, so the example needs no
espeak-ng): three sentences spoken by Debian's espeak-ng (voice en-us), each trimmed to its first
and last sample above -40 dBFS, laid between known stretches of quiet, with faint seeded noise
(-50 dBFS) under everything, stored as 16-bit PCM at 8 kHz (the example's infertool resamples it to
the 16 kHz silero-VAD wants). The ground truth is where each sentence was laid.

    apt-get install espeak-ng && python examples/speech/make_wav.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from infertool.inputs.audio import read_wav, resample  # noqa: E402

HERE = Path(__file__).resolve().parent
RATE = 8000
SENTENCES = ("Speech starts here.", "Seven, eight, nine.", "Goodbye.")
GAPS = (0.6, 0.7, 0.9, 0.5)  # seconds of quiet before, between and after the sentences


def spoken(text: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "say.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(target), text], check=True)
        channels, rate = read_wav(target)
    wave_ = resample(channels[0], rate, RATE)
    loud = np.flatnonzero(np.abs(wave_) > 10 ** (-40 / 20))
    return wave_[loud[0] : loud[-1] + 1]


def main() -> None:
    rng = np.random.default_rng(17)
    pieces, segments, at = [], [], 0
    for index, text in enumerate(SENTENCES):
        gap = int(GAPS[index] * RATE)
        pieces.append(np.zeros(gap, np.float32))
        speech = spoken(text)
        segments.append({"start": (at + gap) / RATE, "end": (at + gap + len(speech)) / RATE, "text": text})
        pieces.append(speech)
        at += gap + len(speech)
    pieces.append(np.zeros(int(GAPS[-1] * RATE), np.float32))
    signal = np.concatenate(pieces) + rng.normal(0, 10 ** (-50 / 20), at + int(GAPS[-1] * RATE))
    samples = np.clip(np.round(signal * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(HERE / "speech.wav"), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(RATE)
        handle.writeframes(samples.tobytes())
    version = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout.split("Data at")[0].strip()
    truth = {"source": f"{version}, voice en-us, speed 160; made by make_wav.py", "sample_rate": RATE, "seconds": len(samples) / RATE, "speech": segments}
    (HERE / "speech.json").write_text(json.dumps(truth, indent=2) + "\n")
    print(f"wrote speech.wav ({len(samples) / RATE:.2f} s, {(HERE / 'speech.wav').stat().st_size} bytes) and speech.json")


if __name__ == "__main__":
    main()
