"""Painting on a mask: round dabs with a hard core and a soft edge, along a stroke.

A mask grows to take in any dab that falls outside it, so the canvas has no edge to paint off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sfumato.desktop.model.document import Rect


@dataclass(frozen=True)
class Brush:
    size: float = 24.0  # diameter in canvas pixels
    hardness: float = 0.8  # share of the radius painted at full strength; the rest fades out
    erase: bool = False

    @property
    def radius(self) -> float:
        return max(0.5, self.size / 2)


def dab_strength(brush: Brush, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """0..1 coverage of a dab at the offsets (dx, dy) from its centre."""
    distance = np.hypot(dx, dy)
    core = brush.radius * min(1.0, max(0.0, brush.hardness))
    fade = max(brush.radius - core, 1e-6)
    return np.clip((brush.radius - distance) / fade, 0.0, 1.0)


def grow_to(pixels: np.ndarray, origin: tuple[int, int], rect: Rect) -> tuple[np.ndarray, tuple[int, int]]:
    """The mask enlarged (with zeros) so that it covers ``rect``; its new origin."""
    current = Rect(origin[0], origin[1], pixels.shape[1], pixels.shape[0])
    wanted = current.union(rect)
    if wanted == current:
        return pixels, origin
    grown = np.zeros((wanted.height, wanted.width), pixels.dtype)
    top, left = current.y - wanted.y, current.x - wanted.x
    grown[top : top + current.height, left : left + current.width] = pixels
    return grown, (wanted.x, wanted.y)


def dab(
    pixels: np.ndarray, origin: tuple[int, int], brush: Brush, cx: float, cy: float
) -> tuple[np.ndarray, tuple[int, int]]:
    """One dab at canvas point (cx, cy); returns the (possibly grown) mask and its origin."""
    r = brush.radius
    box = Rect(math.floor(cx - r), math.floor(cy - r), math.ceil(cx + r) - math.floor(cx - r) + 1, 0)
    box = Rect(box.x, box.y, box.width, math.ceil(cy + r) - math.floor(cy - r) + 1)
    if not brush.erase:
        pixels, origin = grow_to(pixels, origin, box)
    area = box.intersect(Rect(origin[0], origin[1], pixels.shape[1], pixels.shape[0]))
    if area.empty:
        return pixels, origin
    ys, xs = np.mgrid[area.y : area.bottom, area.x : area.right]
    # pixel centres are at +0.5
    strength = dab_strength(brush, xs + 0.5 - cx, ys + 0.5 - cy)
    view = pixels[area.y - origin[1] : area.bottom - origin[1], area.x - origin[0] : area.right - origin[0]]
    if brush.erase:
        np.minimum(view, np.rint((1 - strength) * 255).astype(np.uint8), out=view)
    else:
        np.maximum(view, np.rint(strength * 255).astype(np.uint8), out=view)
    return pixels, origin


def stroke_points(
    start: tuple[float, float], end: tuple[float, float], brush: Brush
) -> list[tuple[float, float]]:
    """Dab centres from start (excluded) to end (included), a quarter of the radius apart."""
    length = math.dist(start, end)
    count = max(1, math.ceil(length / max(0.5, brush.radius / 4)))
    return [
        (start[0] + (end[0] - start[0]) * i / count, start[1] + (end[1] - start[1]) * i / count)
        for i in range(1, count + 1)
    ]


def fill_rect(
    pixels: np.ndarray, origin: tuple[int, int], rect: Rect, value: int
) -> tuple[np.ndarray, tuple[int, int]]:
    """Set a rectangle of the mask to ``value`` (255 fills and grows the mask, 0 clears)."""
    if value:
        pixels, origin = grow_to(pixels, origin, rect)
    area = rect.intersect(Rect(origin[0], origin[1], pixels.shape[1], pixels.shape[0]))
    if not area.empty:
        pixels[area.y - origin[1] : area.bottom - origin[1], area.x - origin[0] : area.right - origin[0]] = (
            value
        )
    return pixels, origin


def fill_polygon(
    pixels: np.ndarray, origin: tuple[int, int], points: list[tuple[float, float]], value: int
) -> tuple[np.ndarray, tuple[int, int]]:
    """Fill a freehand outline (the lasso) with ``value``: 255 masks (growing the mask), 0 unmasks."""
    from PIL import Image, ImageDraw

    if len(points) < 3:
        return pixels, origin
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    box = Rect(math.floor(min(xs)), math.floor(min(ys)), 0, 0)
    box = Rect(box.x, box.y, math.ceil(max(xs)) - box.x + 1, math.ceil(max(ys)) - box.y + 1)
    if value:
        pixels, origin = grow_to(pixels, origin, box)
    outline = Image.new("L", (pixels.shape[1], pixels.shape[0]), 0)
    ImageDraw.Draw(outline).polygon([(x - origin[0], y - origin[1]) for x, y in points], fill=255)
    inside = np.asarray(outline) > 0
    pixels[inside] = value
    return pixels, origin
