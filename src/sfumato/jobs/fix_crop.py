"""The fix-crop request: outpaint the side where a picture's subject is cut off, with its own recipe."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sfumato.core.errors import InvalidRequest
from sfumato.core.images import load_image
from sfumato.core.request import GenerationRequest, parse_request

# What the picture's recipe lends the fix: how it was drawn, not its size or inputs.
_KEPT = (
    "prompt",
    "negative_prompt",
    "steps",
    "cfg_scale",
    "sampler",
    "schedule_type",
    "seed",
    "clip_skip",
    "model",
    "vae",
)


def fix_crop_request(
    picture: str, side: str | None = None, overrides: Mapping[str, Any] | None = None
) -> GenerationRequest:
    """``picture`` is a path or ``data:`` URI; ``overrides`` (request fields) win over its recipe.

    Raises NothingCutOff when the subject touches no edge and no side is named.
    """
    from sfumato.archive.infotext import request_fields
    from sfumato.archive.metadata import read_metadata
    from sfumato.engine.fix_crop import crop_fix

    outpaint = crop_fix(load_image(picture, "picture"), side)
    found = read_metadata(picture)
    recipe: dict[str, Any] = {}
    if found.request is not None:
        recipe = found.request.model_dump(mode="json")
    elif found.has_recipe:
        recipe = found.fields or request_fields(found.params)
    fields = {key: recipe[key] for key in _KEPT if recipe.get(key) is not None}
    fields |= {key: value for key, value in (overrides or {}).items() if value is not None}
    if not fields.get("prompt"):
        raise InvalidRequest(
            "The picture holds no prompt to complete it with.", "Give the prompt (what the picture shows)."
        )
    fields |= {"init_image": picture, "outpaint": outpaint.model_dump(mode="json")}
    return parse_request(fields)
