"""Enlarge a picture with an upscaler model or Lanczos / Nearest, to a size the settings allow.

A model of scale s runs as often as needed to reach the asked factor (at most three times; tiled, see
``models/upscalers.py``), then Lanczos brings the result to the exact size, as A1111 does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PIL import Image

from sfumato.core.errors import InvalidRequest
from sfumato.core.postprocess import BUILTIN_UPSCALERS, UpscaleStep
from sfumato.models.upscalers import DEFAULT_OVERLAP, DEFAULT_TILE, enlarge

if TYPE_CHECKING:
    from sfumato.models.upscalers import UpscalerModel

_RESAMPLE = {"Lanczos": Image.Resampling.LANCZOS, "Nearest": Image.Resampling.NEAREST}


def target_size(size: tuple[int, int], step: UpscaleStep) -> tuple[int, int]:
    """The upscaled size: width/height when given (one alone keeps the aspect ratio), else by scale."""
    width, height = size
    if step.width and step.height:
        return step.width, step.height
    if step.width:
        return step.width, max(1, round(height * step.width / width))
    if step.height:
        return max(1, round(width * step.height / height)), step.height
    return max(1, round(width * step.scale)), max(1, round(height * step.scale))


def check_size(size: tuple[int, int], max_side: int) -> None:
    if max(size) > max_side:
        raise InvalidRequest(
            f"The upscaled picture would be {size[0]}x{size[1]} pixels; the maximum is {max_side} a side.",
            "Upscale by less, or raise max_canvas_side in the settings.",
        )


def upscale_picture(
    picture: Image.Image,
    step: UpscaleStep,
    *,
    max_side: int,
    model: UpscalerModel | None = None,
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
) -> Image.Image:
    """``picture`` enlarged as ``step`` says; ``model`` is the loaded upscaler when the step names one."""
    size = target_size(picture.size, step)
    check_size(size, max_side)
    mode = picture.mode
    rgb = picture.convert("RGB")
    if step.upscaler in BUILTIN_UPSCALERS or model is None:
        resized = rgb.resize(size, _RESAMPLE.get(step.upscaler, Image.Resampling.LANCZOS))
    else:
        bigger = enlarge(model, rgb, size, tile=tile, overlap=overlap)
        resized = bigger if bigger.size == size else bigger.resize(size, Image.Resampling.LANCZOS)
    if mode == "RGBA":  # the model sees colours only; the alpha channel is resized alongside
        alpha = picture.getchannel("A").resize(size, Image.Resampling.LANCZOS)
        resized.putalpha(alpha)
    return resized
