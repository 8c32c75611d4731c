"""Tiling options of the request: latent-tiled diffusion for large canvases, and the tiled VAE."""

from __future__ import annotations

import enum

from pydantic import BaseModel, ConfigDict, Field, field_validator


class TiledMethod(enum.StrEnum):
    """How the tiles' predictions are averaged where they overlap."""

    mixture_of_diffusers = "Mixture of Diffusers"  # Gaussian weights, highest at a tile's centre
    multidiffusion = "MultiDiffusion"  # every tile counts the same, feathered at its borders


class TiledDiffusion(BaseModel):
    """Latent-tiled diffusion (MultiDiffusion / Mixture of Diffusers): at every step each tile of the
    model's native size is denoised and the predictions are averaged with feathered weights, so a
    canvas larger than the model knows stays one coherent picture, without seams."""

    model_config = ConfigDict(extra="forbid")

    tile: int | None = Field(default=None, ge=64, le=4096, description="Tile side in pixels; None = native.")
    overlap: int = Field(default=48, ge=0, le=2048, description="Pixels neighbouring tiles share.")
    method: TiledMethod = TiledMethod.mixture_of_diffusers

    @field_validator("tile", "overlap")
    @classmethod
    def _multiple_of_8(cls, value: int | None) -> int | None:
        if value is not None and value % 8:
            raise ValueError(f"{value} is not a multiple of 8; try {round(value / 8) * 8}")
        return value
