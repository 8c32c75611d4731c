"""Soft inpainting: the mask's grey levels are honoured while denoising and when the render is blended back.

While denoising, after each step a latent keeps ``(1 - m) ** e`` of the original (noised to the step's
level), where ``m`` is its mask strength and the exponent ``e = contrast * sigma ** bias`` falls with
the noise level ``sigma`` (``contrast`` is the preservation strength, ``bias`` the schedule bias): early on partly
masked latents follow the render, later they return towards the original, and fully masked or
unmasked ones are repainted or kept as always. The two are mixed so that the mixed latent's length is
the power mean (of the transition contrast boost) of theirs, which keeps contrast from washing out
where they are averaged.

At the end each pixel is blended by its mask strength, scaled (unless ``mask_influence`` is 1) by how
much the render changed it, relative to the largest change in the mask: a change of at least
``difference_threshold`` of the largest takes the render, pixels the render left nearly alone keep the
original exactly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PIL import Image

from sfumato.core.inpainting import SoftInpainting

if TYPE_CHECKING:
    import torch

    from sfumato.engine.loop import AfterStep


def soft_latent_mask(mask: torch.Tensor, factor: int) -> torch.Tensor:
    """[1, 1, H, W] soft pixel mask -> [1, 1, H/f, W/f]: each latent's mean mask strength."""
    import torch

    return torch.nn.functional.avg_pool2d(mask, factor)


def noise_levels(scheduler: Any, timesteps: torch.Tensor) -> list[float]:
    """The noise level sigma = sqrt((1 - a) / a) at each timestep, from the training schedule's alphas."""
    import torch

    alphas = scheduler.alphas_cumprod
    top = len(alphas) - 1
    levels = []
    for t in timesteps.tolist():
        a = float(alphas[min(top, max(0, round(float(t))))])
        levels.append(float(torch.tensor((1 - a) / a).sqrt()))
    return levels


def mix(original: torch.Tensor, render: torch.Tensor, amount: torch.Tensor, power: float) -> torch.Tensor:
    """``amount`` (per latent, 0 = original) of ``render``, with the power-mean length of the two."""
    import torch

    mixed = original * (1 - amount) + render * amount
    length = torch.linalg.vector_norm(mixed, dim=1, keepdim=True).clamp_min(1e-6)
    lengths = (
        torch.linalg.vector_norm(original, dim=1, keepdim=True).pow(power) * (1 - amount)
        + torch.linalg.vector_norm(render, dim=1, keepdim=True).pow(power) * amount
    ).pow(1 / power)
    return mixed * (lengths / length)


def soft_blend(
    scheduler: Any,
    timesteps: torch.Tensor,
    init: torch.Tensor,
    noise: torch.Tensor,
    mask: torch.Tensor,
    settings: SoftInpainting,
) -> AfterStep:
    """The loop hook: after scheduler call ``i`` the latents meet the original noised to call i+1's level."""
    levels = noise_levels(scheduler, timesteps)
    keep_from = (1 - mask).clamp(0, 1)

    def blend(latents: torch.Tensor, i: int) -> torch.Tensor:
        if i + 1 < len(timesteps):
            known = scheduler.add_noise(init, noise, timesteps[i + 1 : i + 2].repeat(init.shape[0]))
            level = levels[i + 1]
        else:
            known, level = init, levels[-1]  # the least noise the schedule has
        exponent = settings.preservation_strength * level**settings.schedule_bias
        keep = keep_from.pow(exponent) if exponent > 0 else (keep_from >= 1).float()
        return mix(known, latents, 1 - keep, settings.transition_contrast_boost)

    return blend


def soft_composite(
    generated: Image.Image, original: Image.Image, mask: Image.Image, settings: SoftInpainting
) -> Image.Image:
    """The render blended over the original by mask strength and by how much each pixel changed."""
    import numpy as np

    new = np.asarray(generated.convert("RGB"), dtype=np.float64)
    old = np.asarray(original.convert("RGB"), dtype=np.float64)
    strength = np.asarray(mask.convert("L"), dtype=np.float64) / 255.0
    change = np.linalg.norm(new - old, axis=-1)
    largest = float(change[strength > 0].max()) if (strength > 0).any() else 0.0
    if largest > 0 and settings.mask_influence < 1:
        # Changes of ``difference_threshold`` (of the largest) or more take the render fully; below,
        # an S-curve as steep as ``difference_contrast`` leads down to the original.
        ramp = np.clip(change / largest / max(settings.difference_threshold, 1e-6), 0.0, 1.0)
        steep = settings.difference_contrast
        by_change = ramp**steep / (ramp**steep + (1 - ramp) ** steep) if steep > 0 else np.ones_like(ramp)
        alpha = strength * (settings.mask_influence + (1 - settings.mask_influence) * by_change)
    else:
        alpha = strength
    out = old * (1 - alpha[..., None]) + new * alpha[..., None]
    return Image.fromarray(out.round().clip(0, 255).astype(np.uint8), "RGB")
