"""Read a picture of the demo world back into facts, with classical image analysis (no learned model).

The judge finds the background colour from the image border, separates the objects from it,
and for each object reports its colour (the palette colour most of its pixels are nearest to),
its shape (template matching of its silhouette; a smiley is a round silhouette with holes),
its grid position (from its centre) and size (from its bounding box). It reads images of any
size by resampling them to the world's native size first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import numpy as np
from PIL import Image
from scipy import ndimage

from sfumato.demo import world

_TEMPLATE = 32
_MAX_COLOUR_DISTANCE = 90.0  # RGB distance beyond which a pixel belongs to no palette colour
_BACKGROUND_DISTANCE = 70.0  # pixels closer than this to the background colour are background
_MIN_AREA = 0.0025  # of the image: smaller blobs are noise or anti-aliasing
_LARGE_SIDE = 0.2  # bounding-box side (of the image width) above which an object is large
_HOLE_FRACTION = 0.04  # share of an object's area in another colour that makes it a smiley


@dataclass(frozen=True)
class JudgedObject:
    shape: str
    colour: str
    position: str
    size: str
    box: tuple[int, int, int, int]  # left, top, right, bottom (exclusive), at the image's own size
    area: float  # share of the image


@dataclass(frozen=True)
class Judgement:
    background: str
    objects: tuple[JudgedObject, ...] = field(default_factory=tuple)

    def as_scene(self) -> world.Scene:
        return world.Scene(
            objects=tuple(world.SceneObject(o.shape, o.colour, o.position, o.size) for o in self.objects),
            background=self.background,
        )


def _palette(names: list[str], table: dict[str, tuple[int, int, int]]) -> np.ndarray:
    return np.array([table[n] for n in names], dtype=np.float32)


def _nearest(pixels: np.ndarray, palette: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    distances = np.linalg.norm(pixels[..., None, :] - palette, axis=-1)
    return distances.argmin(-1), distances.min(-1)


@cache
def _templates() -> dict[str, np.ndarray]:
    """Silhouettes of each shape, cropped to their box and stretched to a square."""
    result = {}
    for shape in world.ALL_SHAPES:
        if shape == "smiley":
            continue
        obj = world.SceneObject(shape, "black", "center", "large")
        image = np.asarray(world.render(world.Scene((obj,), "white"), 192).convert("L")) < 128
        result[shape] = _normalise(image)
    return result


def _normalise(mask: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(mask)
    crop = mask[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].astype(np.float32)
    return (
        np.asarray(Image.fromarray(crop * 255).resize((_TEMPLATE, _TEMPLATE), Image.Resampling.BILINEAR))
        / 255
    )


def _aspect(mask: np.ndarray) -> float:
    rows, cols = np.nonzero(mask)
    return (cols.max() - cols.min() + 1) / (rows.max() - rows.min() + 1)


@cache
def _template_aspects() -> dict[str, float]:
    result = {}
    for shape in _templates():
        obj = world.SceneObject(shape, "black", "center", "large")
        left, top, right, bottom = world.object_box(obj, 192)
        result[shape] = (right - left) / (bottom - top)
    return result


def classify_shape(silhouette: np.ndarray, hole_fraction: float) -> str:
    """The shape whose template best matches a filled silhouette (True inside the object)."""
    if hole_fraction > _HOLE_FRACTION:
        return "smiley"
    normalised = _normalise(silhouette)
    aspect = _aspect(silhouette)
    scores = {
        shape: float(np.abs(normalised - template).mean())
        + 0.5 * abs(np.log(aspect / _template_aspects()[shape]))
        for shape, template in _templates().items()
    }
    return min(scores, key=scores.__getitem__)


def judge(image: Image.Image) -> Judgement:
    """Read an image of the demo world: background colour and each object's facts."""
    size = world.NATIVE_SIZE
    original_width, original_height = image.size
    pixels = np.asarray(image.convert("RGB").resize((size, size), Image.Resampling.BOX), dtype=np.float32)

    backgrounds = list(world.BACKGROUNDS)
    border = np.concatenate(
        [
            pixels[:3].reshape(-1, 3),
            pixels[-3:].reshape(-1, 3),
            pixels[:, :3].reshape(-1, 3),
            pixels[:, -3:].reshape(-1, 3),
        ]
    )
    votes = _nearest(border, _palette(backgrounds, world.BACKGROUNDS))[0]
    background = backgrounds[int(np.bincount(votes, minlength=len(backgrounds)).argmax())]
    background_rgb = np.median(border, axis=0)

    colours = [c for c in world.ALL_COLOURS if c != background]
    labels, distances = _nearest(pixels, _palette(colours, world.ALL_COLOURS))
    labels[distances > _MAX_COLOUR_DISTANCE] = -1
    foreground = np.linalg.norm(pixels - background_rgb, axis=-1) > _BACKGROUND_DISTANCE
    foreground = ndimage.binary_opening(foreground, structure=np.ones((2, 2)))
    components = np.asarray(ndimage.label(foreground, structure=np.ones((3, 3)))[0])  # pyright: ignore[reportIndexIssue]

    found = []
    for index, box in enumerate(ndimage.find_objects(components), start=1):
        if box is None:
            continue
        mask = components == index
        filled = ndimage.binary_fill_holes(mask)
        assert filled is not None
        area = int(filled.sum())
        if area < _MIN_AREA * size * size:
            continue
        counts = np.bincount(labels[mask & (labels >= 0)], minlength=len(colours))
        if counts.sum() == 0:
            continue
        colour_index = int(counts.argmax())
        # Holes fully enclosed by the object's own colour (a smiley's eyes and mouth); blended edge
        # pixels of concave shapes are not enclosed, so they do not count.
        own = mask & (labels == colour_index)
        enclosed = ndimage.binary_fill_holes(own)
        assert enclosed is not None
        holes = float((enclosed & ~own).sum()) / area
        rows, cols = np.nonzero(filled)
        cx, cy = (cols.mean() + 0.5) / size, (rows.mean() + 0.5) / size
        column, row = min(2, int(cx * 3)), min(2, int(cy * 3))
        position = next(name for name, cell in world.POSITIONS.items() if cell == (column, row))
        side = max(cols.max() - cols.min() + 1, rows.max() - rows.min() + 1) / size
        sx, sy = original_width / size, original_height / size
        found.append(
            JudgedObject(
                shape=classify_shape(filled, holes),
                colour=colours[colour_index],
                position=position,
                size="large" if side > _LARGE_SIDE else "small",
                box=(
                    round(cols.min() * sx),
                    round(rows.min() * sy),
                    round((cols.max() + 1) * sx),
                    round((rows.max() + 1) * sy),
                ),
                area=area / (size * size),
            )
        )
    found.sort(key=lambda o: -o.area)
    return Judgement(background=background, objects=tuple(found))


# -- scoring against what was asked ---------------------------------------------------------------

ATTRIBUTES = ("colour", "shape", "position", "size")


def match_objects(
    expected: world.Scene, judged: Judgement
) -> list[tuple[world.SceneObject, JudgedObject | None]]:
    """Pair each asked-for object with the judged object that agrees with it on the most attributes."""
    remaining = list(judged.objects)
    pairs: list[tuple[world.SceneObject, JudgedObject | None]] = []
    for obj in expected.objects:
        if not remaining:
            pairs.append((obj, None))
            continue
        best = max(
            remaining,
            key=lambda j: sum(
                getattr(obj, a) is not None and getattr(obj, a) == getattr(j, a) for a in ATTRIBUTES
            ),
        )
        remaining.remove(best)
        pairs.append((obj, best))
    return pairs


def score(expected: world.Scene, judged: Judgement) -> dict[str, float]:
    """Per attribute, the share of what the scene asks for that the image shows (None attributes skipped)."""
    result: dict[str, float] = {"count": float(len(judged.objects) == len(expected.objects))}
    if expected.background is not None:
        result["background"] = float(judged.background == expected.background)
    pairs = match_objects(expected, judged)
    for attribute in ATTRIBUTES:
        asked = [(o, j) for o, j in pairs if getattr(o, attribute) is not None]
        if asked:
            hits = sum(j is not None and getattr(j, attribute) == getattr(o, attribute) for o, j in asked)
            result[attribute] = hits / len(asked)
    return result
