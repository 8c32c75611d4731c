"""The VAE in overlapping tiles, so its memory stays bounded whatever the picture's size.

The decoder's activations (hundreds of channels at full resolution) are what a large picture runs
out of memory on; decoded tile by tile, only one tile's activations exist at a time, and the output
(3 channels) is the only full-size buffer. Neighbouring tiles overlap and are blended along linear
feathers, so the group normalisation each tile computes on its own leaves no seam. Encoding works
the same way in the other direction, blending the latent distribution's mean and spread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sfumato.engine.tiled_upscale import feather

if TYPE_CHECKING:
    from collections.abc import Callable

    import torch

    from sfumato.models.components import Components

AUTOMATIC_ABOVE = 4  # tiled automatically above this many times the model's native pixel count
OVERLAP_SHARE = 2  # tiles overlap by half their side (a quarter: 1.5x the difference from untiled)


def should_tile(components: Components, width: int, height: int, asked: bool | None) -> bool:
    """``asked`` (the request's ``tiled_vae``) decides; None: tiles above 4x the native pixel count."""
    if asked is not None:
        return asked
    return width * height > AUTOMATIC_ABOVE * components.native_size**2


def starts(length: int, tile: int, overlap: int) -> list[int]:
    """Tile starts covering ``length`` with neighbours sharing at least ``overlap``, spread evenly."""
    if tile >= length:
        return [0]
    count = 1 + -(-(length - tile) // (tile - overlap))
    step = (length - tile) / (count - 1)
    return [round(i * step) for i in range(count)]


def _blend(
    source: torch.Tensor,
    tile: int,
    overlap: int,
    units: tuple[int, int],
    channels: int,
    work: Callable[[torch.Tensor], tuple[torch.Tensor, ...]],
) -> tuple[torch.Tensor, ...]:
    """Run ``work`` on overlapping tiles of ``source`` and blend what it returns (``channels`` channels
    each) into full-size tensors. Tiles are laid out on a grid of latents: ``tile`` and ``overlap`` in
    latents, ``units`` = (pixels per latent in the source, in the output)."""
    import torch

    unit_in, unit_out = units
    batch, _, height, width = source.shape
    grid_h, grid_w = height // unit_in, width // unit_in
    outputs: list[torch.Tensor] | None = None
    total = torch.zeros((1, 1, grid_h * unit_out, grid_w * unit_out))
    for y in starts(grid_h, tile, overlap):
        for x in starts(grid_w, tile, overlap):
            part = source[..., y * unit_in : (y + tile) * unit_in, x * unit_in : (x + tile) * unit_in]
            results = [r.float().cpu() for r in work(part)]
            th, tw = results[0].shape[-2:]
            oy, ox = y * unit_out, x * unit_out
            neighbours = (y > 0, y + tile < grid_h, x > 0, x + tile < grid_w)
            weights = torch.from_numpy(feather((tw, th), overlap * unit_out, neighbours)).float()
            if outputs is None:
                outputs = [torch.zeros((batch, channels, *total.shape[-2:])) for _ in results]
            for output, result in zip(outputs, results, strict=True):
                output[..., oy : oy + th, ox : ox + tw] += result * weights
            total[..., oy : oy + th, ox : ox + tw] += weights
    assert outputs is not None
    return tuple(output / total for output in outputs)


def _tile(components: Components) -> tuple[int, int]:
    """Tile side and overlap in latents: the model's native size, overlapping by half."""
    tile = max(2, components.native_size // components.vae_scale_factor)
    return tile, max(1, tile // OVERLAP_SHARE)


def decode_tiled(components: Components, raw: torch.Tensor) -> torch.Tensor:
    """VAE latents (unscaled) -> pixels [N, 3, H, W] float32 on the CPU, decoded tile by tile."""
    import torch

    vae: Any = components.vae  # diffusers' annotations (FloatTensor) are narrower than what it takes

    def decode(part: torch.Tensor) -> tuple[torch.Tensor]:
        with torch.no_grad():
            return (vae.decode(part.to(vae.device, vae.dtype), return_dict=False)[0],)

    (pixels,) = _blend(raw, *_tile(components), (1, components.vae_scale_factor), 3, decode)
    return pixels


def encode_tiled(components: Components, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixels [N, 3, H, W] -> the latent distribution's mean and std, encoded tile by tile."""
    import torch

    vae: Any = components.vae

    def encode(part: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            dist = vae.encode(part.to(vae.device, vae.dtype)).latent_dist
        return dist.mean, dist.std

    channels = int(vae.config.latent_channels)
    mean, std = _blend(pixels, *_tile(components), (components.vae_scale_factor, 1), channels, encode)
    return mean.to(vae.device), std.to(vae.device)
