"""A1111's always-on scripts that Sfumato runs natively, their `args` mapped onto our request.

"Soft Inpainting" (built into A1111 1.8+; clients key it "soft inpainting"): args are
[enabled, schedule bias, preservation strength, transition contrast boost, mask influence,
difference threshold, difference contrast], as its UI orders them; missing trailing ones take
A1111's defaults.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sfumato.core.errors import InvalidRequest

SOFT_INPAINTING = "soft inpainting"

_SOFT_FIELDS = (
    "schedule_bias",
    "preservation_strength",
    "transition_contrast_boost",
    "mask_influence",
    "difference_threshold",
    "difference_contrast",
)


def _args(name: str, value: Any) -> list[Any]:
    args = value.get("args", []) if isinstance(value, dict) else value
    if not isinstance(args, list):
        raise InvalidRequest(
            f"alwayson_scripts[{name!r}] should be {{'args': [...]}}, not {value!r}.",
            "Send the script's arguments as a list under 'args'.",
        )
    return args


def soft_inpainting(scripts: dict[str, Any]) -> dict[str, Any] | None:
    """The request's ``soft_inpainting`` field from A1111's always-on scripts, or None when off or absent."""
    found = next((value for name, value in scripts.items() if name.strip().lower() == SOFT_INPAINTING), None)
    if found in (None, {}, []):
        return None
    args = _args(SOFT_INPAINTING, found)
    if not args:
        return None
    if not isinstance(args[0], bool):
        raise InvalidRequest(
            f"The soft inpainting script's first argument (enabled) should be true or false, not {args[0]!r}.",
            "Send [true, schedule bias, preservation strength, transition contrast boost, …].",
        )
    if not args[0]:
        return None
    if len(args) > 1 + len(_SOFT_FIELDS):
        raise InvalidRequest(
            f"The soft inpainting script takes {1 + len(_SOFT_FIELDS)} arguments, not {len(args)}.",
            "Send [enabled, schedule bias, preservation strength, transition contrast boost, mask "
            "influence, difference threshold, difference contrast].",
        )
    settings: dict[str, Any] = {}
    for field, value in zip(_SOFT_FIELDS, args[1:], strict=False):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidRequest(
                f"The soft inpainting argument {field.replace('_', ' ')} should be a number, not {value!r}.",
                "Send the arguments in the script's order.",
            )
        settings[field] = value
    return settings


# The "Tiled Diffusion" script of the multidiffusion-upscaler extension (the usual way A1111 users
# get MultiDiffusion): [enabled, method, overwrite_size, keep_input_size, image_width, image_height,
# tile_width, tile_height, overlap, tile_batch_size, upscaler_name, scale_factor, noise_inverse, …];
# tile sides and overlap are in latents (8 pixels each).
TILED_DIFFUSION = "tiled diffusion"
_METHODS = ("MultiDiffusion", "Mixture of Diffusers")


def _found(scripts: dict[str, Any], name: str) -> Any:
    return next((value for key, value in scripts.items() if key.strip().lower() == name), None)


def _kind(index: int, value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        raise InvalidRequest(
            f"The tiled diffusion argument {index} ({what}) should be {_NAMES.get(kind, 'a number')}, "
            f"not {value!r}.",
            "Send the arguments in the script's order.",
        )
    return value


_NAMES: dict[Any, str] = {bool: "true or false", str: "text", int: "a whole number"}


def tiled_diffusion(
    scripts: dict[str, Any], *, init_size: Callable[[], tuple[int, int]] | None
) -> dict[str, Any] | None:
    """Request fields (``tiled_diffusion``, and the size when the script sets it) from the extension's
    args, or None when it is off or absent. ``init_size``: img2img's init picture's size."""
    found = _found(scripts, TILED_DIFFUSION)
    if found in (None, {}, []):
        return None
    args = _args(TILED_DIFFUSION, found)
    if not args or not _kind(0, args[0], bool, "enabled"):
        return None
    padded = [*args, *[None] * 13][:13]
    method = padded[1] if padded[1] is not None else _METHODS[0]
    if _kind(1, method, str, "method") not in _METHODS:
        raise InvalidRequest(
            f"Unknown tiled diffusion method {method!r}.", f"Choose one of: {', '.join(_METHODS)}."
        )
    fields: dict[str, Any] = {}
    if padded[2] is not None and _kind(2, padded[2], bool, "overwrite size"):
        fields["width"] = _kind(4, padded[4], int, "image width") // 8 * 8
        fields["height"] = _kind(5, padded[5], int, "image height") // 8 * 8
    elif init_size is not None and (padded[3] is None or _kind(3, padded[3], bool, "keep input size")):
        fields["width"], fields["height"] = (side // 8 * 8 for side in init_size())
    tile_w = _kind(6, padded[6] if padded[6] is not None else 96, int, "tile width")
    tile_h = _kind(7, padded[7] if padded[7] is not None else 96, int, "tile height")
    if tile_w != tile_h:
        raise InvalidRequest(
            f"Tiles of {tile_w}x{tile_h} latents: Sfumato's tiles are square.",
            "Send the same tile width and height.",
        )
    overlap = _kind(8, padded[8] if padded[8] is not None else 48, int, "overlap")
    upscaler, scale = padded[10], padded[11]
    if upscaler not in (None, "None") or scale not in (None, 1, 1.0):
        raise InvalidRequest(
            "Tiled diffusion's own upscaling (upscaler_name, scale_factor) is not supported.",
            "Send upscaler 'None' and scale 1; for larger pictures use the 'SD upscale' script.",
        )
    if padded[12]:
        raise InvalidRequest("Noise inversion is not supported.", "Send noise_inverse: false.")
    fields["tiled_diffusion"] = {"tile": tile_w * 8, "overlap": overlap * 8, "method": method}
    return fields


# Soft inpainting does nothing without a mask (as in A1111), but clients send it with every request.
TXT2IMG_ALWAYSON: tuple[str, ...] = (SOFT_INPAINTING, TILED_DIFFUSION)
IMG2IMG_ALWAYSON: tuple[str, ...] = (SOFT_INPAINTING, TILED_DIFFUSION)
