"""Pictures and recipes for the archive tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PIL import Image

from sfumato.core.request import GenerationRequest
from sfumato.core.result import GeneratedImage, ModelInfo

MakeItem = Callable[..., GeneratedImage]


def make_image(width: int = 64, height: int = 64, seed: int = 0) -> Image.Image:
    """A picture with real content (gradients), so encoders have something to compress."""
    ramp = Image.linear_gradient("L").resize((width, height))
    return Image.merge(
        "RGB", (ramp, ramp.transpose(Image.Transpose.FLIP_TOP_BOTTOM), Image.new("L", ramp.size, seed % 256))
    )


def make_item(
    model: ModelInfo | None = None, extra: dict[str, str] | None = None, **fields: Any
) -> GeneratedImage:
    data: dict[str, Any] = {"prompt": "a red circle", "width": 64, "height": 64, "seed": 42, "steps": 4}
    data.update(fields)
    recipe = GenerationRequest(**data)
    image = make_image(recipe.width or 64, recipe.height or 64, recipe.seed)
    return GeneratedImage(image, recipe, model or ModelInfo("demo", "0123456789"), extra=extra or {})
