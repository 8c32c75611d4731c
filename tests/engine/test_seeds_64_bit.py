"""64-bit seeds (ComfyUI's): how they map to noise, and that 32-bit seeds are unchanged."""

from __future__ import annotations

import torch

from sfumato.engine.seeds import image_noise, image_seed


def test_a_64_bit_seed_draws_the_noise_of_its_low_32_bits_as_comfyui_does() -> None:
    seed = 156680208700286  # from a ComfyUI picture
    ours = image_noise((4, 8, 8), seed).noise
    # ComfyUI: torch.manual_seed(seed) (the default CPU generator), then torch.randn in float32.
    comfy = torch.randn((1, 4, 8, 8), generator=torch.Generator("cpu").manual_seed(seed), dtype=torch.float32)
    assert torch.equal(ours, comfy)
    assert torch.equal(ours, image_noise((4, 8, 8), seed % 2**32).noise)
    assert not torch.equal(ours, image_noise((4, 8, 8), seed % 2**32 + 1).noise)
    top = image_noise((4, 8, 8), 2**64 - 1).noise
    assert torch.equal(top, image_noise((4, 8, 8), 2**32 - 1).noise)


def test_batch_seeds_count_on_from_the_first() -> None:
    assert [image_seed(7, i) for i in range(3)] == [7, 8, 9]
    assert image_seed(2**32 - 1, 1) == 0  # as before: a 32-bit seed wraps inside 32 bits
    assert image_seed(2**40, 2) == 2**40 + 2
    assert image_seed(2**64 - 1, 1) == 0


def test_our_noise_is_a1111s_cpu_rng_which_our_infotext_names() -> None:
    # A1111 with "RNG: CPU": torch.manual_seed(seed), then torch.randn of one picture's latent shape.
    a1111 = torch.randn((4, 8, 8), generator=torch.Generator("cpu").manual_seed(42))
    assert torch.equal(image_noise((4, 8, 8), 42).noise[0], a1111)
