"""A1111's always-on scripts that Sfumato runs natively, their `args` mapped onto our request.

"Soft Inpainting" (built into A1111 1.8+; clients key it "soft inpainting"): args are
[enabled, schedule bias, preservation strength, transition contrast boost, mask influence,
difference threshold, difference contrast], as its UI orders them; missing trailing ones take
A1111's defaults.
"""

from __future__ import annotations

from typing import Any

from sfumato.core.errors import InvalidRequest

SOFT_INPAINTING = "soft inpainting"
IMG2IMG_ALWAYSON: tuple[str, ...] = (SOFT_INPAINTING,)

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
