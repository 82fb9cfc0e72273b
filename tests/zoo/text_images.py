"""Rendered text images for the OCR models of the zoo, so their parity runs on input they were made for.

A text detector fed uniform noise answers ~0 everywhere, and cosine over an all-but-zero
map measures noise; a rendered line of text gives it something to find. Samples are
deterministic, written as NCHW ``.npy`` files already normalised the way the model expects.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

LINES = ("Forge 2026", "edge AI build", "RK3588 int8", "manifest.json", "sha256 ok", "Jetson fp16")
NORMALISATION = {
    "imagenet": (np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)),
    "half": (np.array([0.5, 0.5, 0.5], np.float32), np.array([0.5, 0.5, 0.5], np.float32)),
}


def render(text: str, height: int, width: int, offset: int) -> np.ndarray:
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=max(10, height // 3))
    draw.text((4 + offset % 7, height // 6), text, fill="black", font=font)
    if height >= 2 * font.size + 16:
        draw.text((8, height // 2 + 4), text[::-1], fill=(40, 40, 90), font=font)
    return np.asarray(image, dtype=np.float32) / 255.0


def write_text_dataset(directory: Path, *, height: int, width: int, samples: int, normalise: str) -> Path:
    mean, std = NORMALISATION[normalise]
    directory.mkdir(parents=True, exist_ok=True)
    for index in range(samples):
        pixels = render(LINES[index % len(LINES)], height, width, index)
        tensor = ((pixels - mean) / std).transpose(2, 0, 1)[None].astype(np.float32)
        np.save(directory / f"sample_{index:02d}.npy", tensor)
    return directory
