"""The X/Y/Z plot: one request varied along up to three axes, each cell a request of its own."""

from __future__ import annotations

import itertools
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sfumato.core.errors import InvalidRequest
from sfumato.core.request import GenerationRequest, describe_validation_error

# Axis names (the user's words, and A1111's labels) -> the request field they vary.
AXES: dict[str, str] = {
    "seed": "seed",
    "variation seed": "variation_seed",
    "variation strength": "variation_strength",
    "steps": "steps",
    "cfg scale": "cfg_scale",
    "cfg": "cfg_scale",
    "sampler": "sampler",
    "schedule type": "schedule_type",
    "checkpoint": "model",
    "model": "model",
    "vae": "vae",
    "denoising": "denoising_strength",
    "denoising strength": "denoising_strength",
    "clip skip": "clip_skip",
    "prompt s/r": "prompt",
    "width": "width",
    "height": "height",
}
MAX_CELLS = 256
Value = str | int | float


def axis_field(name: str) -> str:
    key = name.strip().lower().replace("_", " ")
    if key in AXES:
        return AXES[key]
    raise ValueError(f"unknown axis {name!r}; choose one of: {', '.join(dict.fromkeys(AXES))}")


class Axis(BaseModel):
    """One axis: a name from :data:`AXES` and its values. "Prompt S/R" replaces its first value (found
    in the prompt) by each value in turn, the first included, as A1111 does (a LoRA's weight too)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    values: list[Value] = Field(min_length=1, max_length=64)

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        axis_field(value)
        return value

    @property
    def field(self) -> str:
        return axis_field(self.name)

    def labels(self) -> list[str]:
        if self.field == "prompt":  # the words themselves say what changed
            return [str(value) for value in self.values]
        return [f"{self.name}: {value}" for value in self.values]


class XYZPlot(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request: GenerationRequest
    x: Axis
    y: Axis | None = None
    z: Axis | None = None

    @property
    def axes(self) -> list[Axis]:
        return [axis for axis in (self.x, self.y, self.z) if axis is not None]

    def cells(self) -> list[tuple[tuple[int, int, int], GenerationRequest]]:
        """Every cell's (x, y, z) position and request, x fastest; raises InvalidRequest for a value
        the request cannot take."""
        shape = [len(axis.values) for axis in self.axes]
        count = 1
        for length in shape:
            count *= length
        if count > MAX_CELLS:
            raise InvalidRequest(f"The plot has {count} cells; at most {MAX_CELLS}.", "Use fewer values.")
        cells = []
        for position in itertools.product(*(range(n) for n in reversed(shape))):
            index = tuple(reversed(position))
            fields = self.request.model_dump(mode="json")
            for axis, i in zip(self.axes, index, strict=True):
                fields = _apply(fields, axis, axis.values[i])
            try:
                request = GenerationRequest.model_validate(fields)
            except ValidationError as error:
                raise InvalidRequest(
                    f"The plot's axis values do not fit the request: {describe_validation_error(error)}.",
                    "Give each axis values of its kind (steps: whole numbers, sampler: names…).",
                ) from None
            padded = (*index, 0, 0)[:3]
            cells.append(((padded[0], padded[1], padded[2]), request))
        return cells


def _apply(fields: dict[str, Any], axis: Axis, value: Value) -> dict[str, Any]:
    if axis.field == "prompt":
        search = str(axis.values[0])
        if search not in fields["prompt"] and search not in fields["negative_prompt"]:
            raise InvalidRequest(
                f"Prompt S/R: {search!r} is not in the prompt.",
                "Its first value must be a word of the prompt.",
            )
        return fields | {
            "prompt": fields["prompt"].replace(search, str(value)),
            "negative_prompt": fields["negative_prompt"].replace(search, str(value)),
        }
    return fields | {axis.field: value}
