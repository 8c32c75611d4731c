"""Masks made for the user: a box, a box narrowed by GrabCut to what is in it, a scribble GrabCut
completes, or the box of an object a detector finds (for now the demo world's judge).

GrabCut (OpenCV) models the colours of the object and of its surroundings with Gaussian mixtures
and cuts the picture along the edges between them; its k-means start is seeded, so the same
picture and marks give the same mask.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PIL import Image

from sfumato.core.errors import InvalidRequest
from sfumato.core.images import load_image
from sfumato.core.inpainting import MaskFrom

if TYPE_CHECKING:
    import numpy as np

Box = tuple[int, int, int, int]  # left, top, right, bottom (exclusive)

_ITERATIONS = 5
_OBJECT_MARGIN = 3  # pixels around a detector's box: its edges are anti-aliased
_SCRIBBLE_WHITE, _SCRIBBLE_BLACK = 192, 64


def make_mask(picture: Image.Image, source: MaskFrom) -> tuple[Image.Image, list[str]]:
    """A grey mask of ``picture``'s size (white = repaint) and notes for the user."""
    notes: list[str] = []
    if source.scribble is not None:
        return _from_scribble(picture, load_image(source.scribble, "scribble")), notes
    if source.object is not None:
        box = object_box(picture, source.object)
    else:
        assert source.box is not None
        box = _box_inside(picture.size, source.box)
    if not source.grabcut:
        return box_mask(picture.size, box), notes
    mask = grabcut_box(picture, box)
    if mask.getbbox() is None:
        notes.append("GrabCut found nothing in the box that differs from around it; the whole box was used.")
        return box_mask(picture.size, box), notes
    return mask, notes


def box_mask(size: tuple[int, int], box: Box) -> Image.Image:
    mask = Image.new("L", size, 0)
    mask.paste(255, box)
    return mask


def _box_inside(size: tuple[int, int], xywh: tuple[int, int, int, int]) -> Box:
    x, y, w, h = xywh
    width, height = size
    if x >= width or y >= height:
        raise InvalidRequest(
            f"The box {x},{y},{w},{h} starts outside the {width}x{height} picture.",
            "Give x,y,width,height inside the picture.",
        )
    return x, y, min(width, x + w), min(height, y + h)


def object_box(picture: Image.Image, what: str) -> Box:
    """The box of the largest object matching ``what`` ('red circle', 'square'), found by the demo judge."""
    from sfumato.demo import judge, world

    asked = world.parse_caption(what).objects
    if not asked:
        raise InvalidRequest(
            f"{what!r} names no object the detector knows.",
            f"Name a shape ({', '.join(world.ALL_SHAPES)}), with a colour if you like: 'red circle'.",
        )
    wanted = asked[0]
    found = [
        o
        for o in judge.judge(picture).objects
        if (wanted.shape is None or o.shape == wanted.shape)
        and (wanted.colour is None or o.colour == wanted.colour)
    ]
    if not found:
        raise InvalidRequest(
            f"No {what} was found in the picture.", "Name an object it shows, or give a box (--mask-box)."
        )
    left, top, right, bottom = max(found, key=lambda o: o.area).box
    m = _OBJECT_MARGIN
    return max(0, left - m), max(0, top - m), min(picture.width, right + m), min(picture.height, bottom + m)


def grabcut_box(picture: Image.Image, box: Box) -> Image.Image:
    """What stands inside ``box`` against its surroundings (everything outside the box is background)."""
    import numpy as np

    left, top, right, bottom = box
    marks = np.zeros((picture.height, picture.width), dtype=np.uint8)  # cv2.GC_BGD
    marks[top:bottom, left:right] = 3  # cv2.GC_PR_FGD
    return _grabcut(picture, marks)


def _from_scribble(picture: Image.Image, scribble: Image.Image) -> Image.Image:
    import numpy as np

    if scribble.size != picture.size:
        raise InvalidRequest(
            f"The scribble is {scribble.width}x{scribble.height} pixels but the init image is "
            f"{picture.width}x{picture.height}.",
            "Draw the scribble on a layer of the picture's size.",
        )
    rgba = scribble.convert("RGBA")
    grey = np.asarray(rgba.convert("L"), dtype=np.int16)
    opaque = np.asarray(rgba.getchannel("A")) >= 128
    has_alpha = not bool(opaque.all())
    object_strokes = opaque & (grey >= _SCRIBBLE_WHITE)
    if not object_strokes.any():
        raise InvalidRequest(
            "The scribble has no white strokes to say where the object is.",
            "Paint white over the object (and, on a transparent layer, black over what is not it).",
        )
    rows, cols = np.nonzero(object_strokes)
    # Where the object can be: around the strokes, as far again as they reach; beyond is background.
    reach = max(16, int(rows.max() - rows.min()), int(cols.max() - cols.min()))
    top, bottom = max(0, rows.min() - reach), min(picture.height, rows.max() + 1 + reach)
    left, right = max(0, cols.min() - reach), min(picture.width, cols.max() + 1 + reach)
    marks = np.zeros(grey.shape, dtype=np.uint8)  # cv2.GC_BGD
    marks[top:bottom, left:right] = 2  # cv2.GC_PR_BGD
    if has_alpha:
        marks[opaque & (grey < _SCRIBBLE_BLACK)] = 0
    marks[object_strokes] = 1  # cv2.GC_FGD
    return _grabcut(picture, marks)


def _grabcut(picture: Image.Image, marks: np.ndarray) -> Image.Image:
    import cv2
    import numpy as np

    if not ((marks == 0) | (marks == 2)).any():
        return Image.fromarray(np.where(marks % 2 == 1, 255, 0).astype(np.uint8), "L")
    if not ((marks == 1) | (marks == 3)).any():
        return Image.new("L", picture.size, 0)
    bgr = np.ascontiguousarray(np.asarray(picture.convert("RGB"))[..., ::-1])
    background = np.zeros((1, 65), dtype=np.float64)
    foreground = np.zeros((1, 65), dtype=np.float64)
    cv2.setRNGSeed(0)
    cut = marks.copy()
    cv2.grabCut(bgr, cut, (0, 0, 0, 0), background, foreground, _ITERATIONS, cv2.GC_INIT_WITH_MASK)
    return Image.fromarray(np.where(cut % 2 == 1, 255, 0).astype(np.uint8), "L")
