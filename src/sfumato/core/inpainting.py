"""Inpainting options of the request: soft inpainting, and masks made from a box, a scribble or a found object."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class SoftInpainting(BaseModel):
    """Soft inpainting (as A1111 1.8+): the mask's grey levels are honoured, not cut at 50%.

    While denoising, each latent keeps as much of the original as its mask strength leaves, less early
    (much noise) and more late; at the end each pixel is blended by its mask strength and by how much
    the render changed it. The fields carry A1111's labels and defaults.
    """

    model_config = ConfigDict(extra="forbid")

    schedule_bias: float = Field(
        default=1.0, ge=0.0, le=8.0, description="Shifts when the original is preserved while denoising."
    )
    preservation_strength: float = Field(
        default=0.5, ge=0.0, le=8.0, description="How strongly partly masked content is preserved."
    )
    transition_contrast_boost: float = Field(
        default=4.0,
        ge=1.0,
        le=32.0,
        description="Restores the contrast that averaging partly masked latents loses.",
    )
    mask_influence: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Final blend: 1 = by the mask alone, 0 = also by the change."
    )
    difference_threshold: float = Field(
        default=0.5,
        ge=0.0,
        le=8.0,
        description="Change (of the largest in the mask) that is blended half-way.",
    )
    difference_contrast: float = Field(
        default=2.0, ge=0.0, le=8.0, description="How sharply the final blend follows the change."
    )


class MaskFrom(BaseModel):
    """A mask made for the user: from a box, from a scribble, or from the box of an object a detector
    finds. GrabCut (OpenCV) narrows a box to the outline of what is in it; a scribble always uses it."""

    model_config = ConfigDict(extra="forbid")

    box: tuple[int, int, int, int] | None = Field(
        default=None, description="x, y, width, height in the init picture's pixels."
    )
    scribble: str | None = Field(
        default=None,
        description="A picture of the init picture's size: white strokes over the object, black strokes "
        "(on a transparent layer) over what is not; GrabCut finds the rest.",
    )
    object: str | None = Field(
        default=None,
        max_length=200,
        description="What to find, in words ('red circle': the demo world's judge is the detector).",
    )
    grabcut: bool = Field(default=False, description="Narrow the box to the outline of what is in it.")

    @model_validator(mode="after")
    def _one_source(self) -> MaskFrom:
        given = [name for name in ("box", "scribble", "object") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of box, scribble or object to make the mask from"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if self.box is not None and (self.box[2] <= 0 or self.box[3] <= 0 or min(self.box[:2]) < 0):
            raise ValueError(f"the box {list(self.box)} needs x, y >= 0 and a width and height above 0")
        return self
