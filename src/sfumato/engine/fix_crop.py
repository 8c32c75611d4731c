"""Fixing the cut-off head: find the side where a picture's main subject is cut off by the frame, and
how far to outpaint that side to complete it.

The main subject is the largest region that stands out from the background colour (the median of
the picture's border, which the background holds most of). It is cut off on the side whose edge
it touches along the most pixels; a round subject cut through its middle lacks about half its width
there, so the side grows by half the cut's width and a margin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from PIL import Image

from sfumato.core.errors import InvalidRequest
from sfumato.core.request import SIDES, Outpaint

if TYPE_CHECKING:
    import numpy as np

_BACKGROUND_DISTANCE = 70.0  # RGB distance from the background colour that makes a pixel foreground
_MIN_CONTACT = 4  # pixels of the subject along an edge for it to count as cut off
_MARGIN = 8  # pixels of background left beyond the completed subject


@dataclass(frozen=True)
class CutOff:
    side: str  # top, bottom, left or right
    contact: int  # pixels of the subject along that edge
    pixels: int  # how far to outpaint the side (a multiple of 8)


class NothingCutOff(InvalidRequest):
    """The main subject touches no edge of the picture."""


def subject_mask(picture: Image.Image) -> np.ndarray:
    """True over the largest region that differs from the background colour."""
    import numpy as np
    from scipy import ndimage

    pixels = np.asarray(picture.convert("RGB"), dtype=np.float32)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    background = np.median(border, axis=0)
    foreground = np.linalg.norm(pixels - background, axis=-1) > _BACKGROUND_DISTANCE
    labels, count = ndimage.label(foreground, structure=np.ones((3, 3)))  # pyright: ignore[reportGeneralTypeIssues]
    if count == 0:
        return foreground
    sizes = np.bincount(np.asarray(labels).ravel())[1:]
    return np.asarray(labels) == int(sizes.argmax()) + 1


def _edges(mask: np.ndarray) -> dict[str, np.ndarray]:
    """Per side, which pixels along it the subject reaches (within the outermost two rows)."""
    import numpy as np

    return {
        "top": np.asarray(mask[:2].any(0)),
        "bottom": np.asarray(mask[-2:].any(0)),
        "left": np.asarray(mask[:, :2].any(1)),
        "right": np.asarray(mask[:, -2:].any(1)),
    }


def find_cut_off(picture: Image.Image, side: str | None = None) -> CutOff | None:
    """Where the main subject touches the frame the most (or on ``side``); None when it touches none."""

    mask = subject_mask(picture)
    contacts = {name: int(edge.sum()) for name, edge in _edges(mask).items()}
    if side is None:
        side = max(SIDES, key=lambda name: contacts[name])
        if contacts[side] < _MIN_CONTACT:
            return None
    contact = max(contacts[side], 2 * _MARGIN)
    pixels = -(-(contact // 2 + _MARGIN) // 8) * 8
    return CutOff(side=side, contact=contacts[side], pixels=pixels)


def crop_fix(picture: Image.Image, side: str | None = None) -> Outpaint:
    """The outpaint that completes the subject; raises NothingCutOff when it touches no edge."""
    if side is not None and side not in SIDES:
        raise InvalidRequest(f"Unknown side {side!r}.", f"Choose one of: {', '.join(SIDES)}.")
    found = find_cut_off(picture, side)
    if found is None:
        raise NothingCutOff(
            "The main subject does not touch the frame, so nothing is cut off.",
            "Name a side to grow anyway (--side top), or use outpaint.",
        )
    return Outpaint.model_validate({found.side: found.pixels})
