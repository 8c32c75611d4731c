"""A1111's img2img scripts that Sfumato runs natively, their positional `script_args` mapped onto our request.

Argument orders, from each script's documented UI (what its `ui()` returns, in order):

- "Poor man's outpainting": pixels to expand (8–256, default 128), mask blur (default 4), masked
  content (index: fill, original, latent noise, latent nothing; default fill), directions (a list
  of "left", "right", "up", "down"; default all four).
- "Outpainting mk2": an information label (ignored), pixels to expand (default 128), mask blur
  (default 8), directions, fall-off exponent and colour variation of its matched noise. The matched
  noise is ours to choose: its new area starts as our blurred mirror, and the last two are ignored.
"""

from __future__ import annotations

from typing import Any

from sfumato.core.errors import InvalidRequest
from sfumato.core.request import MaskedContent, OutpaintFill

POOR_MANS = "poor man's outpainting"
MK2 = "outpainting mk2"
IMG2IMG_SCRIPTS = ("Poor man's outpainting", "Outpainting mk2")
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


def outpaint_fields(script_name: str, args: list[Any]) -> dict[str, Any] | None:
    """Request fields for an outpainting script, or None when ``script_name`` is not one."""
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
    return None
