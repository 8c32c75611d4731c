"""Pictures and masks the engine tests start from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_picture(path: Path, size: tuple[int, int] = (64, 64)) -> str:
    """A smooth colourful picture (gradients), saved as PNG; returns its path."""
    width, height = size
    x = np.linspace(0, 255, width)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height)[:, None].repeat(width, 1)
    rgb = np.stack([x, y, 255 - x], axis=-1).astype(np.uint8)
    Image.fromarray(rgb, "RGB").save(path)
    return str(path)


def write_mask(path: Path, box: tuple[int, int, int, int], size: tuple[int, int] = (64, 64)) -> str:
    """White (repaint) inside ``box``, black elsewhere."""
    mask = Image.new("L", size, 0)
    mask.paste(255, box)
    mask.save(path)
    return str(path)


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)
