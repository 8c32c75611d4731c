"""The demo model's synthetic captioned world: one or two flat shapes on a plain background.

Everything here is deterministic: a scene renders to the same pixels at a given size, and a seeded
generator gives the same scenes and captions. Geometry is in units of the image width, so a scene
renders at any size (the demo model's native size is 96x96).

Kept out of the main training data: the shape ``heart`` (HELD_OUT_SHAPE), for a LoRA to teach, and
the colour ``pink`` (HELD_OUT_COLOUR), which the demo model's last stage (``training/demo_pink.py``)
shows its UNet under the word "rosa" and never under "pink", for a textual inversion to find.
Separately, one in eight combinations of the known attributes is never trained on
(``is_held_out_combination``): the prompt-adherence benchmark draws its captions from those.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image, ImageDraw

NATIVE_SIZE = 96

SHAPES = ("circle", "square", "triangle", "star", "smiley")
HELD_OUT_SHAPE = "heart"
ALL_SHAPES = (*SHAPES, HELD_OUT_SHAPE)

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (30, 70, 220),
    "yellow": (245, 215, 30),
    "orange": (245, 130, 20),
    "purple": (130, 40, 170),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}
HELD_OUT_COLOUR = "pink"
ALL_COLOURS: dict[str, tuple[int, int, int]] = {**COLOURS, HELD_OUT_COLOUR: (250, 140, 200)}

BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": COLOURS["white"],
    "black": COLOURS["black"],
    "gray": (128, 128, 128),
    "blue": COLOURS["blue"],
    "green": COLOURS["green"],
    "yellow": COLOURS["yellow"],
    "red": COLOURS["red"],
}

# A 3x3 grid; (column, row) of each cell.
POSITIONS: dict[str, tuple[int, int]] = {
    "top left": (0, 0),
    "top": (1, 0),
    "top right": (2, 0),
    "left": (0, 1),
    "center": (1, 1),
    "right": (2, 1),
    "bottom left": (0, 2),
    "bottom": (1, 2),
    "bottom right": (2, 2),
}
SIZES: dict[str, float] = {"small": 0.08, "large": 0.145}  # object radius, in image widths
SIZE_THRESHOLD = 0.112  # a radius above this reads as "large"

HELD_OUT_FRACTION = 8  # one combination in this many is never trained on


@dataclass(frozen=True)
class SceneObject:
    shape: str | None = None
    colour: str | None = None
    position: str | None = None
    size: str | None = None


@dataclass(frozen=True)
class Scene:
    objects: tuple[SceneObject, ...] = field(default_factory=tuple)
    background: str | None = None


def cell_center(position: str) -> tuple[float, float]:
    column, row = POSITIONS[position]
    return (column + 0.5) / 3, (row + 0.5) / 3


def _shape_points(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    if shape == "square":
        h = 0.86 * r
        return [(cx - h, cy - h), (cx + h, cy - h), (cx + h, cy + h), (cx - h, cy + h)]
    if shape == "triangle":
        # Equilateral, pointing up, centred on its bounding box so it sits in its cell.
        w, h = 1.0 * r, 0.87 * r
        return [(cx, cy - h), (cx + w, cy + h), (cx - w, cy + h)]
    if shape == "star":
        points = []
        for k in range(10):
            radius = r if k % 2 == 0 else 0.42 * r
            angle = -math.pi / 2 + k * math.pi / 5
            points.append((cx + radius * math.cos(angle), cy + 0.05 * r + radius * math.sin(angle)))
        return points
    if shape == "heart":
        points = []
        for k in range(64):
            t = 2 * math.pi * k / 64
            x = 16 * math.sin(t) ** 3
            y = -(13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t))
            points.append((cx + x / 16.5 * r, cy + (y + 2.5) / 15.5 * r))
        return points
    raise ValueError(f"no polygon for shape {shape!r}")


def object_box(obj: SceneObject, size: int = NATIVE_SIZE) -> tuple[int, int, int, int]:
    """The object's bounding box in pixels at ``size``: (left, top, right, bottom), right/bottom exclusive."""
    assert obj.shape and obj.position and obj.size
    cx, cy = cell_center(obj.position)
    r = SIZES[obj.size]
    if obj.shape in ("circle", "smiley"):
        box = (cx - r, cy - r, cx + r, cy + r)
    else:
        xs, ys = zip(*_shape_points(obj.shape, cx, cy, r), strict=True)
        box = (min(xs), min(ys), max(xs), max(ys))
    return (
        math.floor(box[0] * size),
        math.floor(box[1] * size),
        math.ceil(box[2] * size),
        math.ceil(box[3] * size),
    )


def _draw_object(draw: ImageDraw.ImageDraw, obj: SceneObject, scale: float) -> None:
    assert obj.shape and obj.colour and obj.position and obj.size
    fill = ALL_COLOURS[obj.colour]
    cx, cy = cell_center(obj.position)
    r = SIZES[obj.size]
    if obj.shape in ("circle", "smiley"):
        draw.ellipse([(cx - r) * scale, (cy - r) * scale, (cx + r) * scale, (cy + r) * scale], fill=fill)
        if obj.shape == "smiley":
            feature = COLOURS["white"] if obj.colour == "black" else COLOURS["black"]
            for dx in (-0.36, 0.36):
                ex, ey, er = cx + dx * r, cy - 0.3 * r, 0.16 * r
                draw.ellipse(
                    [(ex - er) * scale, (ey - er) * scale, (ex + er) * scale, (ey + er) * scale], fill=feature
                )
            m = 0.55 * r
            draw.arc(
                [(cx - m) * scale, (cy - m) * scale, (cx + m) * scale, (cy + m) * scale],
                start=25,
                end=155,
                fill=feature,
                width=max(1, round(0.16 * r * scale)),
            )
        return
    draw.polygon([(x * scale, y * scale) for x, y in _shape_points(obj.shape, cx, cy, r)], fill=fill)


def render(scene: Scene, size: int = NATIVE_SIZE, supersample: int = 4) -> Image.Image:
    """Draw the scene as an RGB image of ``size`` x ``size`` pixels, with anti-aliased edges."""
    big = size * supersample
    background = BACKGROUNDS.get(
        scene.background or "", ALL_COLOURS.get(scene.background or "", (128, 128, 128))
    )
    image = Image.new("RGB", (big, big), background)
    draw = ImageDraw.Draw(image)
    for obj in scene.objects:
        _draw_object(draw, obj, big)
    return image.resize((size, size), Image.Resampling.BOX)


# -- sampling -------------------------------------------------------------------------------------


def combination_key(scene: Scene) -> str:
    parts = sorted(f"{o.colour}-{o.shape}-{o.position}" for o in scene.objects)
    return "|".join(parts) + f"/{scene.background}"


def is_held_out_combination(scene: Scene) -> bool:
    digest = hashlib.sha256(combination_key(scene).encode()).digest()
    return digest[0] % HELD_OUT_FRACTION == 0


def _sample_any(rng: np.random.Generator, shapes: tuple[str, ...], colours: list[str]) -> Scene:
    background = str(rng.choice(list(BACKGROUNDS)))
    count = 1 if rng.random() < 0.55 else 2
    positions = rng.choice(list(POSITIONS), size=count, replace=False)
    usable = [c for c in colours if c != background]
    chosen = rng.choice(usable, size=count, replace=False)
    objects = tuple(
        SceneObject(
            shape=str(rng.choice(list(shapes))),
            colour=str(chosen[i]),
            position=str(positions[i]),
            size=str(rng.choice(list(SIZES))),
        )
        for i in range(count)
    )
    return Scene(objects=objects, background=background)


def sample_scene(rng: np.random.Generator, held_out: bool = False, novel: bool = False) -> Scene:
    """A random scene of the training split, or (``held_out``) of the combinations never trained on.

    ``novel`` lets the held-out shape and colour (heart, pink) appear too; the main training never
    uses it.
    """
    shapes = ALL_SHAPES if novel else SHAPES
    colours = list(ALL_COLOURS if novel else COLOURS)
    while True:
        scene = _sample_any(rng, shapes, colours)
        if novel or is_held_out_combination(scene) == held_out:
            return scene


# -- captions -------------------------------------------------------------------------------------

_SHAPE_WORDS = {
    "circle": ("circle", "circle", "disc", "round circle"),
    "square": ("square", "square", "box"),
    "triangle": ("triangle",),
    "star": ("star",),
    "smiley": ("smiley face", "smiley", "smiling face", "face"),
    "heart": ("heart",),
}
_SIZE_WORDS = {"small": ("small", "little", "tiny"), "large": ("large", "big")}
_POSITION_PHRASES = {
    "top left": ("at the top left", "in the top left corner", "top left", "in the upper left"),
    "top": ("at the top", "at the top center", "top"),
    "top right": ("at the top right", "in the top right corner", "top right", "in the upper right"),
    "left": ("on the left", "at the left", "left"),
    "center": ("in the center", "in the middle", "in the centre", "center"),
    "right": ("on the right", "at the right", "right"),
    "bottom left": ("at the bottom left", "in the bottom left corner", "bottom left", "in the lower left"),
    "bottom": ("at the bottom", "at the bottom center", "bottom"),
    "bottom right": (
        "at the bottom right",
        "in the bottom right corner",
        "bottom right",
        "in the lower right",
    ),
}


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def _noun_phrase(obj: SceneObject, rng: np.random.Generator, with_size: bool) -> str:
    words = []
    if with_size and obj.size:
        words.append(_pick(rng, _SIZE_WORDS[obj.size]))
    if obj.colour:
        words.append(obj.colour)
    words.append(_pick(rng, _SHAPE_WORDS[obj.shape or "circle"]) if obj.shape else "shape")
    return " ".join(words)


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def caption(scene: Scene, rng: np.random.Generator, complete: bool = False) -> str:
    """A natural caption of the scene in one of several phrasings.

    With ``complete`` every attribute but size is named (what the benchmark asks for); otherwise
    some attributes are left out at random so that short prompts ("a red circle") work too.
    """
    with_size = rng.random() < (0.5 if complete else 0.4)
    with_position = complete or rng.random() < 0.8
    with_background = complete or rng.random() < 0.8
    style = int(rng.integers(3))
    nouns = [_noun_phrase(o, rng, with_size) for o in scene.objects]
    where = [_pick(rng, _POSITION_PHRASES[o.position]) if o.position else "" for o in scene.objects]
    background = f"{scene.background} background" if scene.background else ""
    if style == 2:  # terse, comma separated
        pieces = [f"{n}, {w}" if with_position and w else n for n, w in zip(nouns, where, strict=True)]
        text = ", ".join(pieces)
        if with_background and background:
            text += f", {background}"
        return text
    pieces = []
    for noun, phrase in zip(nouns, where, strict=True):
        piece = _article(noun)
        if with_position and phrase:
            piece += f" {phrase}" if phrase.startswith(("at ", "in ", "on ")) else f" at the {phrase}"
        pieces.append(piece)
    text = " and ".join(pieces)
    if with_background and background:
        text += f" on {_article(background)}" if style == 0 else f", {background}"
    return text


# -- parsing --------------------------------------------------------------------------------------

_SHAPE_LOOKUP = {
    "smiley face": "smiley",
    "smiling face": "smiley",
    "round circle": "circle",
    "smiley": "smiley",
    "face": "smiley",
    "circle": "circle",
    "disc": "circle",
    "square": "square",
    "box": "square",
    "triangle": "triangle",
    "star": "star",
    "heart": "heart",
    "shape": "",
}
_POSITION_LOOKUP = [
    (r"(top|upper) left", "top left"),
    (r"(top|upper) right", "top right"),
    (r"(bottom|lower) left", "bottom left"),
    (r"(bottom|lower) right", "bottom right"),
    (r"(top|upper)( cent(er|re)| middle)?", "top"),
    (r"(bottom|lower)( cent(er|re)| middle)?", "bottom"),
    (r"cent(er|re)|middle", "center"),
    (r"left", "left"),
    (r"right", "right"),
]
_SIZE_LOOKUP = {"small": "small", "little": "small", "tiny": "small", "large": "large", "big": "large"}
_COLOUR_WORD = "|".join(sorted({*ALL_COLOURS, "gray", "grey"}, key=len, reverse=True))
_SHAPE_WORD = "|".join(sorted(_SHAPE_LOOKUP, key=len, reverse=True))


def _colour_name(word: str) -> str:
    return "gray" if word == "grey" else word


def parse_caption(text: str) -> Scene:
    """Read a caption back into a Scene; anything the caption does not say is None."""
    text = " " + re.sub(r"[^a-z ]+", " ", text.lower()) + " "
    background = None
    found = re.search(rf"\b({_COLOUR_WORD})\s+background\b", text)
    if found:
        background = _colour_name(found.group(1))
        text = text[: found.start()] + " " + text[found.end() :]
    matches = list(
        re.finditer(
            rf"\b(?:(small|little|tiny|large|big)\s+)?(?:({_COLOUR_WORD})\s+)?({_SHAPE_WORD})\b", text
        )
    )
    objects = []
    for index, match in enumerate(matches):
        tail_end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        tail = text[match.end() : tail_end]
        position = None
        for pattern, name in _POSITION_LOOKUP:
            if re.search(rf"\b({pattern})\b", tail):
                position = name
                break
        objects.append(
            SceneObject(
                shape=_SHAPE_LOOKUP[match.group(3)] or None,
                colour=_colour_name(match.group(2)) if match.group(2) else None,
                position=position,
                size=_SIZE_LOOKUP[match.group(1)] if match.group(1) else None,
            )
        )
    return Scene(objects=tuple(objects), background=background)


def without_sizes(scene: Scene) -> Scene:
    return replace(scene, objects=tuple(replace(o, size=None) for o in scene.objects))
