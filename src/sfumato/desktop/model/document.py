"""The canvas document: an unbounded plane of layers (pictures, generated results, masks).

Layers are stored bottom first. A picture or result holds RGBA pixels, a mask one channel
(255 = repaint). Each layer sits at an integer position on the plane; nothing clips it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from PIL import Image


class LayerKind(enum.StrEnum):
    picture = "picture"
    result = "result"  # a generated picture, with the recipe that made it
    mask = "mask"  # where a generation may repaint


@dataclass(frozen=True)
class Rect:
    x: int
    y: int
    width: int
    height: int

    @property
    def right(self) -> int:
        return self.x + self.width

    @property
    def bottom(self) -> int:
        return self.y + self.height

    @property
    def empty(self) -> bool:
        return self.width <= 0 or self.height <= 0

    def intersect(self, other: Rect) -> Rect:
        x, y = max(self.x, other.x), max(self.y, other.y)
        return Rect(
            x, y, max(0, min(self.right, other.right) - x), max(0, min(self.bottom, other.bottom) - y)
        )

    def union(self, other: Rect) -> Rect:
        if self.empty:
            return other
        if other.empty:
            return self
        x, y = min(self.x, other.x), min(self.y, other.y)
        return Rect(x, y, max(self.right, other.right) - x, max(self.bottom, other.bottom) - y)

    def normalised(self) -> Rect:
        """The same rectangle with a positive width and height (as dragged in any direction)."""
        x, right = sorted((self.x, self.x + self.width))
        y, bottom = sorted((self.y, self.y + self.height))
        return Rect(x, y, right - x, bottom - y)


@dataclass
class Layer:
    name: str
    kind: LayerKind
    pixels: np.ndarray  # uint8: (H, W, 4) RGBA for pictures and results, (H, W) for masks
    x: int = 0
    y: int = 0
    visible: bool = True
    opacity: float = 1.0
    recipe: dict[str, Any] | None = None  # the request (JSON) that made a result
    id: int = 0  # given by the document

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def rect(self) -> Rect:
        return Rect(self.x, self.y, self.width, self.height)

    @property
    def is_mask(self) -> bool:
        return self.kind is LayerKind.mask

    def image(self) -> Image.Image:
        return Image.fromarray(self.pixels, "L" if self.is_mask else "RGBA")

    def copy(self) -> Layer:
        return replace(self, pixels=self.pixels.copy(), recipe=dict(self.recipe) if self.recipe else None)

    @classmethod
    def from_image(
        cls, name: str, image: Image.Image, kind: LayerKind = LayerKind.picture, x: int = 0, y: int = 0
    ) -> Layer:
        mode = "L" if kind is LayerKind.mask else "RGBA"
        return cls(name, kind, np.array(image.convert(mode), dtype=np.uint8), x, y)

    @classmethod
    def empty_mask(cls, name: str, rect: Rect) -> Layer:
        return cls(name, LayerKind.mask, np.zeros((rect.height, rect.width), np.uint8), rect.x, rect.y)


Listener = Callable[[], None]

# Layer properties an edit may set by name (pixels go through ``set_pixels``).
EDITABLE = frozenset({"name", "visible", "opacity", "x", "y", "recipe"})


@dataclass
class Document:
    """The layers, bottom first, and who to tell when they change."""

    layers: list[Layer] = field(default_factory=list)
    _next_id: int = 1
    _listeners: list[Listener] = field(default_factory=list)

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def changed(self) -> None:
        for listener in list(self._listeners):
            listener()

    # reading ------------------------------------------------------------------------------

    def layer(self, layer_id: int) -> Layer:
        for layer in self.layers:
            if layer.id == layer_id:
                return layer
        raise KeyError(f"no layer {layer_id}")

    def index_of(self, layer_id: int) -> int:
        return self.layers.index(self.layer(layer_id))

    def bounds(self, kinds: Iterable[LayerKind] = tuple(LayerKind)) -> Rect:
        wanted = set(kinds)
        rect = Rect(0, 0, 0, 0)
        for layer in self.layers:
            if layer.kind in wanted:
                rect = rect.union(layer.rect)
        return rect

    def composite(self, rect: Rect) -> np.ndarray:
        """The visible pictures and results inside ``rect``, blended, as RGBA (H, W, 4) uint8."""
        out = np.zeros((rect.height, rect.width, 4), np.float32)
        for layer in self.layers:
            if layer.is_mask or not layer.visible or layer.opacity <= 0:
                continue
            part = layer.rect.intersect(rect)
            if part.empty:
                continue
            src = layer.pixels[
                part.y - layer.y : part.bottom - layer.y, part.x - layer.x : part.right - layer.x
            ].astype(np.float32)
            dst = out[part.y - rect.y : part.bottom - rect.y, part.x - rect.x : part.right - rect.x]
            alpha = src[..., 3:] / 255.0 * layer.opacity
            dst_alpha = dst[..., 3:] / 255.0
            new_alpha = alpha + dst_alpha * (1 - alpha)
            safe = np.where(new_alpha > 0, new_alpha, 1)
            dst[..., :3] = (src[..., :3] * alpha + dst[..., :3] * dst_alpha * (1 - alpha)) / safe
            dst[..., 3:] = new_alpha * 255.0
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)

    def mask(self, rect: Rect) -> np.ndarray:
        """The visible masks inside ``rect``, combined (the strongest wins), as (H, W) uint8."""
        out = np.zeros((rect.height, rect.width), np.uint8)
        for layer in self.layers:
            if not layer.is_mask or not layer.visible:
                continue
            part = layer.rect.intersect(rect)
            if part.empty:
                continue
            src = layer.pixels[
                part.y - layer.y : part.bottom - layer.y, part.x - layer.x : part.right - layer.x
            ]
            dst = out[part.y - rect.y : part.bottom - rect.y, part.x - rect.x : part.right - rect.x]
            np.maximum(dst, src, out=dst)
        return out

    # editing (the undo commands call these) -------------------------------------------------

    def insert(self, layer: Layer, index: int | None = None) -> Layer:
        if layer.id == 0:
            layer.id = self._next_id
        self._next_id = max(self._next_id, layer.id + 1)
        self.layers.insert(len(self.layers) if index is None else index, layer)
        self.changed()
        return layer

    def remove(self, layer_id: int) -> tuple[Layer, int]:
        index = self.index_of(layer_id)
        layer = self.layers.pop(index)
        self.changed()
        return layer, index

    def move(self, layer_id: int, index: int) -> None:
        layer = self.layers.pop(self.index_of(layer_id))
        self.layers.insert(max(0, min(len(self.layers), index)), layer)
        self.changed()

    def set(self, layer_id: int, name: str, value: Any) -> Any:
        """Set one property; returns the value it had."""
        if name not in EDITABLE:
            raise ValueError(f"{name} is not a layer property that can be set")
        layer = self.layer(layer_id)
        before = getattr(layer, name)
        setattr(layer, name, value)
        self.changed()
        return before

    def set_pixels(self, layer_id: int, pixels: np.ndarray, x: int, y: int) -> tuple[np.ndarray, int, int]:
        """Replace a layer's pixels and position; returns the old ones."""
        layer = self.layer(layer_id)
        before = (layer.pixels, layer.x, layer.y)
        layer.pixels, layer.x, layer.y = pixels, x, y
        self.changed()
        return before

    def clear(self) -> None:
        self.replace_all([])

    def replace_all(self, layers: list[Layer]) -> None:
        """Another canvas's layers (an opened file), numbered anew."""
        self.layers.clear()
        self._next_id = 1
        for layer in layers:
            layer.id = self._next_id
            self._next_id += 1
            self.layers.append(layer)
        self.changed()
