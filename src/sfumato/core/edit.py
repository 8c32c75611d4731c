"""An edit by prompt: a picture, what it shows (``source_prompt``) and what it should show instead."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class EditRequest(BaseModel):
    """Recover the picture's noise with ``source_prompt``, then regenerate it with ``target_prompt``
    where the change belongs; the rest of the picture is kept."""

    model_config = ConfigDict(extra="forbid")

    picture: str = Field(description="The picture: a file path (CLI) or a data: URI with base64 bytes.")
    source_prompt: str = Field(
        min_length=1, max_length=2000, description='What the picture shows: "a red circle".'
    )
    target_prompt: str = Field(
        min_length=1, max_length=2000, description='What it should show: "a blue circle".'
    )
    steps: int = Field(
        default=20, ge=1, le=150, description="DDIM steps of the inversion and the regeneration."
    )
    guidance: float = Field(default=5.0, ge=0.0, le=30.0, description="How hard the target is followed.")
    threshold: float = Field(
        default=0.35,
        gt=0.0,
        lt=1.0,
        description="Share of the largest prediction change that joins the mask.",
    )
    method: Literal["fixed-point", "ddim"] = Field(
        default="fixed-point", description="Exact (fixed-point) or plain DDIM inversion."
    )
    region: Literal["auto", "changed", "background"] = Field(
        default="auto",
        description="Where to repaint: where the prompts' predictions differ, the background, or auto.",
    )
    model: str | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> EditRequest:
        if self.source_prompt.strip() == self.target_prompt.strip():
            raise ValueError(
                "the source and target prompts are the same, so nothing would change; change a word"
            )
        return self
