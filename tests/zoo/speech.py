"""Synthesized speech for the zoo's voice-activity models: espeak-ng, 16 kHz mono 16-bit ``.wav``.

A VAD calibrated on uniform noise never sees a voiced frame; espeak-ng (a real
speech synthesizer, the Debian package ``espeak-ng``) speaks a few sentences,
which are resampled from espeak-ng's 22050 Hz to the model's 16 kHz with
scipy's polyphase filter (``resample_poly``, the same on every host, where sox
versions differ) and cut into the chunks silero-vad's own wrapper feeds: each
chunk is the previous chunk's last ``length - hop`` samples (the context) and
``hop`` new ones. A sample of ``rows`` chunks (an LSTM's sequence) takes
``rows`` consecutive chunks, one file each, named so that name order is time order.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from math import gcd
from pathlib import Path

import numpy as np
from fetch_zoo import ZooUnavailable
from scipy.signal import resample_poly

RATE = 16_000


def synthesize(sentence: str) -> np.ndarray:
    """``sentence`` spoken by espeak-ng (en-us, 150 words a minute) as float64 samples at 16 kHz."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise ZooUnavailable("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "speech.wav"
        done = subprocess.run([espeak, "-v", "en-us", "-s", "150", "-w", str(out), sentence],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0 or not out.is_file():
            raise ZooUnavailable(f"espeak-ng failed (exit {done.returncode}): {done.stderr.strip()[-200:]}")
        with wave.open(str(out), "rb") as audio:
            rate, data = audio.getframerate(), audio.readframes(audio.getnframes())
    samples = np.frombuffer(data, dtype="<i2").astype(np.float64)
    step = gcd(RATE, rate)
    return _trimmed(resample_poly(samples, RATE // step, rate // step))


def _trimmed(speech: np.ndarray, margin: int = RATE // 20) -> np.ndarray:
    """Without espeak-ng's leading and trailing silence beyond ``margin`` (50 ms), so chunks spread over
    the sentences land on speech and the short pauses inside it, not on digital zeros."""
    loud = np.flatnonzero(np.abs(speech) > 100)
    if loud.size == 0:
        return speech
    return speech[max(0, loud[0] - margin):loud[-1] + margin]


def write_speech_dataset(directory: Path, *, sentences: list[str], length: int, hop: int, rows: int,
                         count: int) -> Path:
    """``count`` samples of ``rows`` consecutive chunks of ``length`` samples (``hop`` apart), spread evenly
    over the sentences spoken one after another; one 16 kHz mono 16-bit ``.wav`` per chunk."""
    speech = np.concatenate([synthesize(sentence) for sentence in sentences])
    span = (rows - 1) * hop + length
    if speech.size < span:
        raise ValueError(f"{speech.size} samples of speech cannot fill one sample of {span}")
    directory.mkdir(parents=True, exist_ok=True)
    starts = np.linspace(0, speech.size - span, count).astype(int)
    for group, start in enumerate(starts):
        for row in range(rows):
            chunk = speech[start + row * hop:start + row * hop + length]
            with wave.open(str(directory / f"speech_{group:02d}_{row:02d}.wav"), "wb") as audio:
                audio.setnchannels(1)
                audio.setsampwidth(2)
                audio.setframerate(RATE)
                audio.writeframes(np.clip(np.round(chunk), -32768, 32767).astype("<i2").tobytes())
    return directory
