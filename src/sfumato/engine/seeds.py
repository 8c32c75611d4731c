"""Seeds and noise: drawn on the CPU in float32, so a seed makes the same picture on any device.

Seeds are whole numbers from 0 to 2**64 - 1 (ComfyUI's range; A1111 picks them below 2**32). The
noise comes from torch's CPU generator seeded with the seed as given. That generator (a Mersenne
Twister) keeps the low 32 bits, as it does in ComfyUI, which seeds the same generator the same way:
seed S and S mod 2**32 draw the same noise, so a ComfyUI picture's 64-bit seed gives back its own
starting noise here, and every seed below 2**32 makes the picture it always made. The seed is
recorded as given, so a recipe round-trips to the same number.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

SEED_RANGE = 2**32  # random seeds are picked below this, as A1111 picks them
MAX_SEED = 2**64 - 1


def resolve_seed(seed: int) -> int:
    """-1 -> a random seed; anything else as given."""
    return random.randrange(SEED_RANGE) if seed == -1 else seed


def image_seed(first: int, index: int) -> int:
    """Image ``index`` of a job uses ``seed + index`` (A1111), wrapping inside 32 bits for a 32-bit
    seed (as always) and inside 64 bits for a larger one."""
    return (first + index) % (SEED_RANGE if first < SEED_RANGE else MAX_SEED + 1)


@dataclass
class ImageNoise:
    """The randomness of one picture: its starting noise and the generator that goes on from it.

    The generator (seeded with the picture's seed) keeps serving the picture's later random draws
    (VAE sampling, ancestral and SDE steps), so a picture never depends on its neighbours in a batch.
    """

    noise: torch.Tensor  # [1, C, H, W] float32 on the CPU
    generator: torch.Generator


def image_noise(
    shape: tuple[int, int, int], seed: int, variation_seed: int | None = None, variation_strength: float = 0.0
) -> ImageNoise:
    """Starting noise for one picture; with a variation, slerped towards the variation seed's noise."""
    import torch

    generator = torch.Generator("cpu").manual_seed(seed)
    noise = torch.randn((1, *shape), generator=generator, dtype=torch.float32)
    if variation_seed is not None and variation_strength > 0:
        other = torch.randn((1, *shape), generator=torch.Generator("cpu").manual_seed(variation_seed))
        noise = slerp(noise, other, variation_strength)
    return ImageNoise(noise, generator)


def batch_noise(
    shape: tuple[int, int, int],
    seed: int,
    variation_seed: int,
    variation_strength: float,
    first: int,
    count: int,
) -> list[ImageNoise]:
    """The noise of pictures ``first`` .. ``first + count - 1`` of a job: picture i has seed + i."""
    return [
        image_noise(
            shape, image_seed(seed, first + k), image_seed(variation_seed, first + k), variation_strength
        )
        for k in range(count)
    ]


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation from ``a`` (t=0) to ``b`` (t=1): keeps the noise's statistics in between."""
    import torch

    a_flat, b_flat = a.flatten(), b.flatten()
    cos = torch.dot(a_flat / a_flat.norm(), b_flat / b_flat.norm()).clamp(-1.0, 1.0)
    if float(cos) > 0.9995:  # nearly parallel: the angle is too small to divide by
        return (1 - t) * a + t * b
    omega = torch.arccos(cos)
    sin = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / sin) * a + (torch.sin(t * omega) / sin) * b


def randn_like_images(shape: tuple[int, ...], generators: list[torch.Generator]) -> torch.Tensor:
    """One float32 CPU draw per picture from its own generator, stacked into a batch."""
    import torch

    return torch.cat([torch.randn((1, *shape[1:]), generator=g, dtype=torch.float32) for g in generators])
