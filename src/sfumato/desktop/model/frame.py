"""The generation frame: a rectangle of the model's size on the canvas, and what it asks for.

What lies under the frame decides the operation, as in Krita AI Diffusion and InvokeAI's canvas:
nothing → text to image; a picture → image to image; a picture with a mask → inpaint (the whole
frame as context); a picture that covers only part of the frame → outpaint the empty part when
the picture is a rectangle touching the frame's sides, else inpaint the holes.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from sfumato.core.request import GenerationRequest, MaskedContent, Mode, Outpaint
from sfumato.desktop.model.document import Document, Rect

# Pixels with less alpha than this count as empty canvas.
_SOLID = 250


def _up8(value: int) -> int:
    return -(-value // 8) * 8


def native_size_for(architecture: str | None) -> int:
    """The side a model draws best at, from its architecture as the model library names it."""
    name = (architecture or "").lower()
    if "xl" in name:
        return 1024
    if "768" in name or "v2" in name or "sd2" in name:
        return 768
    if name:
        return 512
    return 96  # the built-in demo model


@dataclass
class Frame:
    x: int = 0
    y: int = 0
    width: int = 96
    height: int = 96

    @property
    def rect(self) -> Rect:
        return Rect(self.x, self.y, self.width, self.height)


@dataclass
class FramePlan:
    """What the canvas under a frame asks for, before the prompt and settings are added."""

    mode: Mode
    frame: Rect
    init: Image.Image | None = None  # RGB
    mask: Image.Image | None = None  # L, 255 = repaint
    outpaint: Outpaint | None = None
    notes: list[str] = field(default_factory=list)
    fill_holes: bool = False  # the mask covers empty canvas: start it from the fill, not from nothing

    def request_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        if self.mode is not Mode.outpaint:
            fields |= {"width": self.frame.width, "height": self.frame.height}
        if self.init is not None:
            fields["init_image"] = data_uri(self.init)
        if self.mask is not None:
            fields["mask"] = data_uri(self.mask)
        if self.outpaint is not None:
            fields["outpaint"] = self.outpaint
        if self.mode is Mode.inpaint:
            fields["masked_content"] = MaskedContent.fill if self.fill_holes else MaskedContent.original
        return fields


def data_uri(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _solid_box(solid: np.ndarray) -> tuple[int, int, int, int] | None:
    rows, cols = np.flatnonzero(solid.any(1)), np.flatnonzero(solid.any(0))
    if not len(rows):
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def plan_frame(document: Document, frame: Rect) -> FramePlan:
    pixels = document.composite(frame)
    solid = pixels[..., 3] >= _SOLID
    mask = document.mask(frame)
    if not solid.any():
        notes = ["The mask is ignored: there is no picture under the frame to inpaint."] if mask.any() else []
        return FramePlan(Mode.txt2img, frame, notes=notes)
    rgb = Image.fromarray(pixels[..., :3], "RGB")
    if solid.all():
        if mask.any():
            return FramePlan(Mode.inpaint, frame, init=rgb, mask=Image.fromarray(mask, "L"))
        return FramePlan(Mode.img2img, frame, init=rgb)
    box = _solid_box(solid)
    assert box is not None
    left, top, right, bottom = box
    is_rectangle = bool(solid[top:bottom, left:right].all())
    if is_rectangle:
        left, top, right, bottom = (
            _up8(left),
            _up8(top),
            _up8(frame.width - right),
            _up8(frame.height - bottom),
        )
        inner = (left, top, frame.width - right, frame.height - bottom)
        if inner[2] - inner[0] >= 8 and inner[3] - inner[1] >= 8:
            notes = (
                ["The mask is ignored: outpainting repaints the empty part of the frame."]
                if mask.any()
                else []
            )
            grow = Outpaint(left=left, top=top, right=right, bottom=bottom)
            return FramePlan(Mode.outpaint, frame, init=rgb.crop(inner), outpaint=grow, notes=notes)
    holes = np.where(solid, 0, 255).astype(np.uint8)
    return FramePlan(
        Mode.inpaint, frame, init=rgb, mask=Image.fromarray(np.maximum(holes, mask), "L"), fill_holes=True
    )


def build_request(plan: FramePlan, settings: dict[str, Any]) -> GenerationRequest:
    """The request for a frame: the prompt panel's ``settings`` plus what the canvas asks for."""
    fields = {**settings, **plan.request_fields()}
    if plan.mode is Mode.txt2img:
        fields.pop("denoising_strength", None)
    return GenerationRequest(**fields)


# Handles on the frame's corners and edges, by compass point: dragging one moves those sides.
HANDLES = ("nw", "n", "ne", "e", "se", "s", "sw", "w")
MIN_FRAME, MAX_FRAME = 64, 4096  # what a request accepts as a side


def handle_points(rect: Rect) -> dict[str, tuple[float, float]]:
    left, top = rect.x, rect.y
    right, bottom = rect.x + rect.width, rect.y + rect.height
    middle_x, middle_y = left + rect.width / 2, top + rect.height / 2
    return {
        "nw": (left, top),
        "n": (middle_x, top),
        "ne": (right, top),
        "e": (right, middle_y),
        "se": (right, bottom),
        "s": (middle_x, bottom),
        "sw": (left, bottom),
        "w": (left, middle_y),
    }


def handle_at(rect: Rect, x: float, y: float, reach: float) -> str | None:
    """The handle within ``reach`` (canvas pixels) of the point, corners first; then any point of an
    edge, so the whole border can be grabbed."""
    points = handle_points(rect)
    for name in ("nw", "ne", "se", "sw", "n", "e", "s", "w"):
        hx, hy = points[name]
        if abs(x - hx) <= reach and abs(y - hy) <= reach:
            return name
    left, top = rect.x, rect.y
    right, bottom = rect.x + rect.width, rect.y + rect.height
    if top - reach <= y <= bottom + reach:
        if abs(x - left) <= reach:
            return "w"
        if abs(x - right) <= reach:
            return "e"
    if left - reach <= x <= right + reach:
        if abs(y - top) <= reach:
            return "n"
        if abs(y - bottom) <= reach:
            return "s"
    return None


def _snap(length: float) -> int:
    return int(min(MAX_FRAME, max(MIN_FRAME, round(length / 8) * 8)))


def resized_frame(start: Rect, handle: str, x: float, y: float) -> Rect:
    """The frame ``start`` with the sides of ``handle`` dragged to (x, y): the opposite sides stay
    put, width and height snap to multiples of 8 (64 to 4096), as a request needs them."""
    left, top = start.x, start.y
    right, bottom = start.x + start.width, start.y + start.height
    width, height = start.width, start.height
    if "w" in handle:
        width = _snap(right - x)
        left = right - width
    elif "e" in handle:
        width = _snap(x - left)
    if "n" in handle:
        height = _snap(bottom - y)
        top = bottom - height
    elif "s" in handle:
        height = _snap(y - top)
    return Rect(left, top, width, height)
