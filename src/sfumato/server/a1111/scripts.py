"""A1111's img2img scripts that Sfumato runs natively, their positional `script_args` mapped onto our request.

Argument orders, from each script's documented UI (what its `ui()` returns, in order):

- "Poor man's outpainting": pixels to expand (8–256, default 128), mask blur (default 4), masked
  content (index: fill, original, latent noise, latent nothing; default fill), directions (a list
  of "left", "right", "up", "down"; default all four).
- "Outpainting mk2": an information label (ignored), pixels to expand (default 128), mask blur
  (default 8), directions, fall-off exponent and colour variation of its matched noise. The matched
  noise is ours to choose: its new area starts as our blurred mirror, and the last two are ignored.
- "SD upscale": an information label (ignored), tile overlap (default 64), upscaler (an index into
  the server's upscalers; 0 None and 1 Lanczos, which is what enlarges here), scale factor (default 2).
- "X/Y/Z plot": for x, y and z in turn the axis type, its values (comma-separated text) and its
  dropdown choices; then draw legend, include lone images, include sub-grids, no fixed seeds, …
"""

from __future__ import annotations

import re
from typing import Any

from sfumato.core.errors import InvalidRequest
from sfumato.core.request import MaskedContent, OutpaintFill

POOR_MANS = "poor man's outpainting"
MK2 = "outpainting mk2"
IMG2IMG_SCRIPTS = ("Poor man's outpainting", "Outpainting mk2", "SD upscale", "X/Y/Z plot")
SD_UPSCALE = "sd upscale"
TXT2IMG_SCRIPTS = ("X/Y/Z plot",)
_DIRECTIONS = {"left": "left", "right": "right", "up": "top", "down": "bottom"}
_ALL_DIRECTIONS = list(_DIRECTIONS)
_KINDS = {int: "a whole number", float: "a number", list: "a list"}
_CONTENT = (
    MaskedContent.fill,
    MaskedContent.original,
    MaskedContent.latent_noise,
    MaskedContent.latent_nothing,
)


def unknown_script(name: str, available: tuple[str, ...]) -> InvalidRequest:
    choices = ", ".join(repr(n) for n in available) if available else "none"
    return InvalidRequest(
        f"The script {name!r} is not available here.",
        f"Scripts this route runs: {choices}; or send script_name: null.",
    )


def _arg(args: list[Any], index: int, default: Any, name: str, kind: type) -> Any:
    value = args[index] if index < len(args) and args[index] is not None else default
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise InvalidRequest(
            f"script_args[{index}] ({name}) should be {_KINDS[kind]}, not {value!r}.",
            "Send the arguments in the script's order.",
        )
    return value


def _sides(pixels: int, directions: list[Any], index: int) -> dict[str, int]:
    sides: dict[str, int] = {}
    for direction in directions:
        if direction not in _DIRECTIONS:
            raise InvalidRequest(
                f"script_args[{index}] holds an unknown direction {direction!r}.",
                "Use left, right, up or down.",
            )
        sides[_DIRECTIONS[direction]] = pixels
    return sides


def image_script_fields(script_name: str, args: list[Any]) -> dict[str, Any] | None:
    """Request fields for an outpainting or upscaling script, or None when ``script_name`` is not one."""
    name = script_name.strip().lower()
    if name == POOR_MANS:
        pixels = _arg(args, 0, 128, "pixels to expand", int)
        blur = _arg(args, 1, 4, "mask blur", int)
        content = _arg(args, 2, 0, "masked content", int)
        directions = _arg(args, 3, _ALL_DIRECTIONS, "outpainting direction", list)
        if not 0 <= content < len(_CONTENT):
            raise InvalidRequest(
                f"script_args[2] (masked content) must be 0–3, not {content}.",
                "0 fill, 1 original, 2 latent noise, 3 latent nothing.",
            )
        outpaint = {**_sides(pixels, directions, 3), "fill": OutpaintFill.edge_stretch, "seam": 2 * blur}
        return {"outpaint": outpaint, "masked_content": _CONTENT[content]}
    if name == MK2:
        pixels = _arg(args, 1, 128, "pixels to expand", int)
        blur = _arg(args, 2, 8, "mask blur", int)
        directions = _arg(args, 3, _ALL_DIRECTIONS, "outpainting direction", list)
        _arg(args, 4, 1.0, "fall-off exponent", float)
        _arg(args, 5, 0.05, "color variation", float)
        outpaint = {**_sides(pixels, directions, 3), "fill": OutpaintFill.blurred_mirror, "seam": 2 * blur}
        return {"outpaint": outpaint, "masked_content": MaskedContent.original}
    if name == SD_UPSCALE:
        # [information label, tile overlap (64), upscaler (index; 0 None and 1 Lanczos), scale factor (2)]
        overlap = _arg(args, 1, 64, "tile overlap", int)
        upscaler = _arg(args, 2, 1, "upscaler", int)
        scale = _arg(args, 3, 2.0, "scale factor", float)
        if upscaler not in (0, 1):
            raise InvalidRequest(
                f"script_args[2]: upscaler {upscaler} is not available here.",
                "Send 0 (None) or 1 (Lanczos): the picture is enlarged with Lanczos before its tiles are re-rendered.",
            )
        return {"upscale": {"scale": scale, "overlap": overlap}}
    return None


XYZ = "x/y/z plot"
# A1111's X/Y/Z axis types by label -> our axis names. Only the first five keep their index in
# every A1111 version (the list differs between txt2img and img2img after them), so the others
# must come by label.
_XYZ_AXES: dict[str, str | None] = {
    "nothing": None,
    "seed": "seed",
    "var. seed": "variation seed",
    "var. strength": "variation strength",
    "steps": "steps",
    "cfg scale": "cfg scale",
    "prompt s/r": "prompt s/r",
    "sampler": "sampler",
    "schedule type": "schedule type",
    "checkpoint name": "checkpoint",
    "vae": "vae",
    "denoising": "denoising",
    "clip skip": "clip skip",
}
_XYZ_STABLE_INDICES = ("nothing", "seed", "var. seed", "var. strength", "steps")
_RANGE = re.compile(r"^\s*(-?\d+)\s*-\s*(-?\d+)\s*$")


def is_xyz(script_name: str | None) -> bool:
    return bool(script_name) and str(script_name).strip().lower() == XYZ


def _xyz_axis_name(kind: Any, index: int) -> str | None:
    if isinstance(kind, int) and not isinstance(kind, bool):
        if 0 <= kind < len(_XYZ_STABLE_INDICES):
            return _XYZ_AXES[_XYZ_STABLE_INDICES[kind]]
        raise InvalidRequest(
            f"script_args[{index}]: axis type {kind} is not one whose number is the same in every A1111 version.",
            f"Send the axis by its label, one of: {', '.join(label.title() for label in _XYZ_AXES)}.",
        )
    label = str(kind).strip().lower()
    if label not in _XYZ_AXES:
        raise InvalidRequest(
            f"script_args[{index}]: unknown X/Y/Z axis {kind!r}.",
            f"Choose one of: {', '.join(label.title() for label in _XYZ_AXES)}.",
        )
    return _XYZ_AXES[label]


def _xyz_values(text: Any, dropdown: Any) -> list[str]:
    if isinstance(dropdown, list) and dropdown and not str(text or "").strip():
        return [str(value) for value in dropdown]
    values: list[str] = []
    for item in str(text or "").split(","):
        if match := _RANGE.match(item):
            start, end = int(match[1]), int(match[2])
            step = 1 if end >= start else -1
            values += [str(v) for v in range(start, end + step, step)]
        elif item.strip():
            values.append(item.strip())
    return values


def xyz_axes(args: list[Any]) -> tuple[dict[str, Any], bool]:
    """The axes of A1111's X/Y/Z plot script_args ([x type, x values, x dropdown, y …, z …, draw legend,
    include lone images, …]) and whether the cells are sent back beside the grid."""
    axes: dict[str, Any] = {}
    for position, axis in enumerate("xyz"):
        kind, text, dropdown = [*args[3 * position : 3 * position + 3], 0, "", []][:3]
        name = _xyz_axis_name(kind if kind is not None else 0, 3 * position)
        if name is None:
            continue
        values = _xyz_values(text, dropdown)
        if not values:
            raise InvalidRequest(
                f"The X/Y/Z plot's {axis} axis ({name}) has no values.", "Give them comma-separated."
            )
        axes[axis] = {"name": name, "values": values}
    if "x" not in axes:
        raise InvalidRequest(
            "The X/Y/Z plot has no X axis.", "Give script_args[0] an axis type and [1] its values."
        )
    lone = bool(args[10]) if len(args) > 10 and args[10] is not None else False
    return axes, lone
