"""Latent-tiled diffusion (MultiDiffusion, Mixture of Diffusers): a canvas larger than the model's
native size is denoised as overlapping native-size tiles, all of them at every step, and their noise
predictions are averaged where they overlap, so the tiles agree on one picture at every noise level.

Averaging the predictions (not the finished tiles) keeps any sampler exact: a scheduler's update is
linear in the prediction. "Mixture of Diffusers" weighs each tile by a Gaussian centred on it;
"MultiDiffusion" weighs tiles the same, feathered linearly across the overlaps so no border shows.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sfumato.core.errors import InvalidRequest
from sfumato.core.tiling import TiledDiffusion, TiledMethod
from sfumato.engine.tiled_upscale import feather, tile_starts

if TYPE_CHECKING:
    import torch

    from sfumato.engine.guidance import GuidedUNet

Window = tuple[int, int, int, int]  # top, left, height, width in latents

_GAUSSIAN_SPREAD = (
    0.1  # the Gaussian's standard deviation, in tile sides (Mixture of Diffusers' 0.01 variance)
)


def tile_size(settings: TiledDiffusion, native: int, canvas: tuple[int, int]) -> tuple[int, int]:
    """(width, height) of the tiles in pixels: the asked side (or native), no larger than the canvas."""
    width, height = canvas
    asked = settings.tile
    if asked is not None and asked > width and asked > height:
        raise InvalidRequest(
            f"Tiles of {asked} pixels are larger than the {width}x{height} canvas.",
            "Use smaller tiles (the model's native size is usual), or leave tiled diffusion out.",
        )
    tile = asked or native
    if settings.overlap >= tile:
        raise InvalidRequest(
            f"An overlap of {settings.overlap} pixels leaves nothing of {tile}-pixel tiles.",
            "Use an overlap of less than the tile size (a half is usual).",
        )
    return min(tile, width), min(tile, height)


def windows(canvas: tuple[int, int], tile: tuple[int, int], overlap: int, factor: int) -> list[Window]:
    """The tiles covering the canvas, in latent units (pixel positions are multiples of 8)."""
    xs = tile_starts(canvas[0], tile[0], overlap)
    ys = tile_starts(canvas[1], tile[1], overlap)
    return [(y // factor, x // factor, tile[1] // factor, tile[0] // factor) for y in ys for x in xs]


def tile_weights(
    window: Window, latent_size: tuple[int, int], overlap: int, method: TiledMethod
) -> torch.Tensor:
    """[1, 1, h, w] weights of one tile."""
    import numpy as np
    import torch

    top, left, height, width = window
    if method is TiledMethod.mixture_of_diffusers:
        ys = (np.arange(height) + 0.5) / height - 0.5
        xs = (np.arange(width) + 0.5) / width - 0.5
        spread = 2 * _GAUSSIAN_SPREAD**2
        weights = np.exp(-(ys[:, None] ** 2) / spread) * np.exp(-(xs[None, :] ** 2) / spread)
    else:
        rows, cols = latent_size
        neighbours = (top > 0, top + height < rows, left > 0, left + width < cols)
        weights = feather((width, height), overlap, neighbours)
    return torch.from_numpy(weights.astype(np.float32))[None, None]


@dataclass
class TiledPrediction:
    """A noise predictor over the whole canvas made of one guided UNet per tile."""

    tiles: list[tuple[Window, GuidedUNet, torch.Tensor]]  # window, its predictor, its weights
    total: torch.Tensor  # [1, 1, H, W] sum of the weights

    def __call__(self, latents: torch.Tensor, t: torch.Tensor, step: int) -> torch.Tensor:
        import torch

        out = torch.zeros(latents.shape, dtype=torch.float32, device=latents.device)
        for (top, left, height, width), guided, weights in self.tiles:
            crop = latents[..., top : top + height, left : left + width]
            out[..., top : top + height, left : left + width] += guided(crop, t, step) * weights
        return out / self.total


def tiled(
    guided: GuidedUNet, settings: TiledDiffusion, native: int, canvas: tuple[int, int]
) -> TiledPrediction:
    """``guided`` (made for the whole canvas) split into tiles of ``settings``."""
    import torch

    factor = guided.components.vae_scale_factor
    tile = tile_size(settings, native, canvas)
    latent_size = (canvas[1] // factor, canvas[0] // factor)
    device = guided.components.device
    total = torch.zeros((1, 1, *latent_size), device=device)
    tiles = []
    for window in windows(canvas, tile, settings.overlap, factor):
        top, left, height, width = window
        weights = tile_weights(window, latent_size, settings.overlap // factor, settings.method).to(device)
        total[..., top : top + height, left : left + width] += weights
        extra = guided.extra_channels
        if extra is not None:
            extra = extra[..., top : top + height, left : left + width]
        # Each tile is a picture of the tile's size to the model (SDXL's size conditioning too).
        part = dataclasses.replace(
            guided, size=(height * factor, width * factor), extra_channels=extra, _time_ids={}
        )
        part._cache = guided._cache  # the prompts' batches are the same for every tile
        tiles.append((window, part, weights))
    return TiledPrediction(tiles, total)
