"""Pixels between numpy / Pillow and Qt."""

from __future__ import annotations

import numpy as np
from PIL import Image
from PySide6.QtGui import QImage, QPixmap

MASK_COLOUR = (235, 50, 90)
MASK_SHOWN_ALPHA = 0.55  # a mask is shown as a see-through red, so the picture stays visible


def qimage_from_rgba(pixels: np.ndarray) -> QImage:
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    height, width = pixels.shape[:2]
    return QImage(pixels.data, width, height, width * 4, QImage.Format.Format_RGBA8888).copy()


def qimage_from_pil(image: Image.Image) -> QImage:
    return qimage_from_rgba(np.asarray(image.convert("RGBA")))


def pixmap_from_pil(image: Image.Image) -> QPixmap:
    return QPixmap.fromImage(qimage_from_pil(image))


def mask_overlay(mask: np.ndarray, opacity: float = 1.0) -> np.ndarray:
    out = np.zeros((*mask.shape, 4), np.uint8)
    out[..., :3] = MASK_COLOUR
    out[..., 3] = np.rint(mask.astype(np.float32) * MASK_SHOWN_ALPHA * opacity).astype(np.uint8)
    return out


def pil_from_qimage(image: QImage) -> Image.Image:
    converted = image.convertToFormat(QImage.Format.Format_RGBA8888)
    width, height = converted.width(), converted.height()
    data = bytes(converted.constBits())  # type: ignore[arg-type]
    stride = converted.bytesPerLine()
    pixels = np.frombuffer(data, np.uint8).reshape(height, stride)[:, : width * 4].reshape(height, width, 4)
    return Image.fromarray(pixels.copy(), "RGBA")
