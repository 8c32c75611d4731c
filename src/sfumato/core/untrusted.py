"""JSON from files and clients Sfumato did not write: parsed with limits, never trusted for types.

Each format's reader calls :func:`parse_json` once and turns :class:`UntrustedData` into its own
user-facing error that names the file; nothing past that reader sees a hostile structure.
"""

from __future__ import annotations

import json
import math
from typing import Any, TypeGuard

MAX_DEPTH = 64  # a safetensors header is 3 deep, a diffusers config 3, a ComfyUI graph under 20


class UntrustedData(ValueError):
    """The data is not what the format allows; ``str()`` says what is wrong, in a user's words."""


def parse_json(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Standard JSON only (no NaN or Infinity, no number that overflows to infinity), at most ``max_depth`` deep."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise UntrustedData("it is not UTF-8 text") from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise UntrustedData(f"its JSON is nested more than {max_depth} levels deep") from None
    except UntrustedData:
        raise
    except ValueError as exc:  # JSONDecodeError, and integers past Python's digit limit
        raise UntrustedData(f"it is not valid JSON ({str(exc).split(':')[0]})") from None
    if _depth(value) > max_depth:
        raise UntrustedData(f"its JSON is nested more than {max_depth} levels deep")
    return value


def _refuse_constant(name: str) -> Any:
    raise UntrustedData(f"its JSON holds {name}, which is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise UntrustedData(f"its JSON holds the number {text[:20]}, too large to be finite")
    return value


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def is_count(value: object) -> TypeGuard[int]:
    """A JSON integer (not a bool, not a float) that is zero or more."""
    return type(value) is int and value >= 0


def refuse_broken_text(data: Any) -> Any:
    """``data`` as it came, unless some text in it is not valid Unicode (a lone UTF-16 surrogate from
    JSON's ``\\ud800``): such text cannot be stored, written into a picture or sent back."""
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise UntrustedData(
            "a text in it is not valid Unicode (it holds a lone \\ud800-\\udfff escape)"
        ) from None
    except (TypeError, ValueError):  # not plain JSON data: the model's own validation reports it
        pass
    return data
