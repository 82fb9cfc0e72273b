"""Audio datasets: 16-bit PCM ``.wav`` files as waveform inputs, read with the standard library.

A speech or sound model calibrated on noise sees none of the structure of
speech; a directory of recorded or synthesized ``.wav`` files gives it the real
thing. Each file is one mono waveform, scaled from int16 to [-1, 1) (as
torchaudio and soundfile do: divided by 32768), cut or zero-padded at the end to
the input's length (its last dimension). A batch of N takes N consecutive files.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from pytest_inferedgeforge.model.errors import ForgeError

WAV_SUFFIXES = (".wav",)


def waveform_length(name: str, shape: list[int]) -> tuple[int, int]:
    """(batch, samples) of a waveform input: [L], [N, L] or [N, 1, L]; anything else is refused."""
    if not shape or len(shape) > 3 or (len(shape) == 3 and shape[1] != 1):
        raise ForgeError(f"input '{name}' {shape} is not a waveform input ([L], [N, L] or [N, 1, L]); "
                         "use .npz samples for it")
    return (shape[0] if len(shape) > 1 else 1), shape[-1]


def read_wav(path: Path, length: int) -> np.ndarray:
    """The file's samples as float32 in [-1, 1), cut or zero-padded to ``length``."""
    try:
        with wave.open(str(path), "rb") as audio:
            channels, width, frames = audio.getnchannels(), audio.getsampwidth(), audio.getnframes()
            if channels != 1 or width != 2:
                raise ForgeError(f"{path}: {channels} channel(s) of {8 * width}-bit samples; a .wav dataset takes "
                                 "mono 16-bit PCM (e.g. ffmpeg -i in.wav -ac 1 -c:a pcm_s16le out.wav)")
            data = audio.readframes(min(frames, length))
    except (wave.Error, EOFError, OSError) as exc:
        raise ForgeError(f"{path}: cannot read as 16-bit PCM .wav: {exc}") from exc
    samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
    return np.pad(samples, (0, length - samples.size))


def waveform_batches(paths: list[Path], name: str, shape: list[int], limit: int | None) -> list[np.ndarray]:
    """Batches of input ``name`` from consecutive files, in name order; at most ``limit`` of them."""
    batch, length = waveform_length(name, shape)
    groups = [paths[i:i + batch] for i in range(0, len(paths) - batch + 1, batch)][:limit]
    if not groups:
        raise ForgeError(f"{len(paths)} .wav file(s) cannot fill one batch of {batch}")
    return [np.stack([read_wav(path, length) for path in group]).reshape(shape) for group in groups]
