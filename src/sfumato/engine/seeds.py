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
    seed: int = 0
    per_position: bool = False  # later draws anchored to latent positions too (see positional_noise)
    _draws: int = 0

    def draw(self, shape: tuple[int, ...]) -> torch.Tensor:
        """The picture's next random draw of ``shape`` ([C, H, W] or [1, C, H, W]), float32 on the CPU:
        the VAE sample of an init picture (img2img's encode noise), fresh masked latents."""
        import torch

        self._draws += 1
        if self.per_position:
            channels, height, width = shape[-3:]
            return positional_noise((channels, height, width), self.seed, stream=self._draws)[None]
        return torch.randn((1, *shape[-3:]), generator=self.generator, dtype=torch.float32)


def image_noise(
    shape: tuple[int, int, int],
    seed: int,
    variation_seed: int | None = None,
    variation_strength: float = 0.0,
    *,
    per_position: bool = False,
) -> ImageNoise:
    """Starting noise for one picture; with a variation, slerped towards the variation seed's noise.

    ``per_position``: every latent position gets noise of its own from the seed, whatever the
    picture's size, so frames of different sizes share the noise where they overlap (top-left aligned).
    """
    import torch

    generator = torch.Generator("cpu").manual_seed(seed)
    if per_position:
        noise = positional_noise(shape, seed)[None]
    else:
        noise = torch.randn((1, *shape), generator=generator, dtype=torch.float32)
    if variation_seed is not None and variation_strength > 0:
        if per_position:
            other = positional_noise(shape, variation_seed)[None]
        else:
            other = torch.randn((1, *shape), generator=torch.Generator("cpu").manual_seed(variation_seed))
        noise = slerp(noise, other, variation_strength)
    return ImageNoise(noise, generator, seed=seed, per_position=per_position)


POSITION_TILE = 8  # latent cells per side of one independently seeded block of positional noise


def positional_noise(shape: tuple[int, int, int], seed: int, stream: int = 0) -> torch.Tensor:
    """[C, H, W] noise where the value at (c, y, x) depends only on the seed, the stream and (y, x).

    Drawn in blocks of POSITION_TILE² cells, each from its own generator seeded by a hash of
    (seed, stream, block row, block column), so any size is a crop of one infinite noise field.
    """
    import hashlib

    import torch

    channels, height, width = shape
    tile = POSITION_TILE
    rows, cols = -(-height // tile), -(-width // tile)
    field = torch.empty((channels, rows * tile, cols * tile), dtype=torch.float32)
    for row in range(rows):
        for col in range(cols):
            digest = hashlib.blake2b(f"{seed}:{stream}:{row}:{col}".encode(), digest_size=8).digest()
            generator = torch.Generator("cpu").manual_seed(int.from_bytes(digest) >> 1)
            block = torch.randn((channels, tile, tile), generator=generator, dtype=torch.float32)
            field[:, row * tile : (row + 1) * tile, col * tile : (col + 1) * tile] = block
    return field[:, :height, :width].contiguous()


def batch_noise(
    shape: tuple[int, int, int],
    seed: int,
    variation_seed: int,
    variation_strength: float,
    first: int,
    count: int,
    *,
    frozen: bool = False,
    per_position: bool = False,
) -> list[ImageNoise]:
    """The noise of pictures ``first`` .. ``first + count - 1`` of a job: picture i has seed + i.

    ``frozen``: every picture draws picture 0's noise (seed + 0), the starting noise and every later
    draw (img2img's encode noise) alike, so only the init pictures tell the pictures apart.
    """
    return [
        image_noise(
            shape,
            image_seed(seed, 0 if frozen else first + k),
            image_seed(variation_seed, 0 if frozen else first + k),
            variation_strength,
            per_position=per_position,
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
