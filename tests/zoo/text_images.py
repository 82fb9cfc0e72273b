"""Rendered text images for the OCR and layout models of the zoo, so their parity runs on input they were made for.

A text detector fed uniform noise answers ~0 everywhere, and cosine over an all-but-zero
map measures noise; a rendered line of text gives it something to find. Samples are
deterministic PNG files (Pillow's bundled font), written at the model's input size; the
spec's ``inputs.preprocess`` normalises them as the model's own pipeline does, so calibration
and evaluation go through the same code a user's images do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def render(text: str, height: int, width: int, offset: int) -> np.ndarray:
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=max(10, height // 3))
    draw.text((4 + offset % 7, height // 6), text, fill="black", font=font)
    if height >= 2 * font.size + 16:
        draw.text((8, height // 2 + 4), text[::-1], fill=(40, 40, 90), font=font)
    return np.asarray(image, dtype=np.float32) / 255.0


def write_text_dataset(directory: Path, *, height: int, width: int, lines: list[str]) -> Path:
    """One PNG per line of text, ``height`` x ``width`` (the input's size: no resize blurs the glyphs)."""
    directory.mkdir(parents=True, exist_ok=True)
    for index, text in enumerate(lines):
        pixels = (render(text, height, width, index) * 255.0).round().astype(np.uint8)
        Image.fromarray(pixels).save(directory / f"text_{index:02d}.png")
    return directory


def render_page(title: str, height: int, width: int, seed: int) -> Image.Image:
    """A document page: a title, paragraphs of body text, a ruled table and a grey figure box,
    the regions a layout detector (text, title, table, figure) is trained to find."""
    rng = np.random.default_rng(seed)
    page = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(page)
    margin, line = width // 12, max(12, height // 60)
    body = ImageFont.load_default(size=line)
    draw.text((margin, margin), title, fill="black", font=ImageFont.load_default(size=2 * line))
    words = ("edge", "build", "manifest", "int8", "parity", "latency", "record", "model", "verify", "host")
    y = margin + 4 * line
    for _ in range(2):
        for _ in range(int(rng.integers(4, 7))):
            draw.text((margin, y), " ".join(rng.choice(words, size=8)), fill="black", font=body)
            y += int(1.5 * line)
        y += line
    rows, cols, cell = 4, 3, (width - 2 * margin) // 3
    for row in range(rows + 1):
        draw.line((margin, y + row * 2 * line, width - margin, y + row * 2 * line), fill="black", width=1)
    for col in range(cols + 1):
        draw.line((margin + col * cell, y, margin + col * cell, y + rows * 2 * line), fill="black", width=1)
    for row in range(rows):
        for col in range(cols):
            draw.text((margin + col * cell + 4, y + row * 2 * line + line // 2), f"{rng.integers(0, 999)}",
                      fill="black", font=body)
    y += rows * 2 * line + 2 * line
    draw.rectangle((margin, y, width - margin, min(height - margin, y + height // 5)), fill=(150, 150, 160))
    return page


def write_pages(directory: Path, *, height: int, width: int, titles: list[str]) -> Path:
    """One rendered document page (PNG, ``height`` x ``width``) per title."""
    directory.mkdir(parents=True, exist_ok=True)
    for index, title in enumerate(titles):
        render_page(title, height, width, seed=sum(map(ord, title))).save(directory / f"page_{index:02d}.png")
    return directory
