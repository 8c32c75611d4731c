"""Seamless tiling: with circular padding the model cannot tell where the picture's edges are, so shifting
its input around the edges shifts its output the same way; and the model is itself again afterwards."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from sfumato.core.errors import Cancelled
from sfumato.core.events import CancelToken
from sfumato.core.request import GenerationRequest
from sfumato.engine.generate import generate
from sfumato.engine.tiling import seamless_tiling
from tiny import tiny_components


@pytest.fixture(scope="module")
def components() -> Any:
    return tiny_components(seed=0)


def _modes(components: Any) -> set[str]:
    return {
        m.padding_mode
        for model in (components.unet, components.vae)
        for m in model.modules()
        if isinstance(m, torch.nn.Conv2d)
    }


def test_the_decoder_wraps_around_the_edges(components: Any) -> None:
    latents = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    shift = 5
    with torch.no_grad(), seamless_tiling(components):
        picture = components.vae.decode(latents).sample
        shifted = components.vae.decode(torch.roll(latents, shift, dims=3)).sample
    factor = components.vae_scale_factor
    assert torch.allclose(torch.roll(picture, shift * factor, dims=3), shifted, atol=1e-4)
    with torch.no_grad():
        plain = components.vae.decode(torch.roll(latents, shift, dims=3)).sample
    assert not torch.allclose(torch.roll(picture, shift * factor, dims=3), plain, atol=1e-2)


def test_the_unet_wraps_around_the_edges(components: Any) -> None:
    latents = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(1))
    text = torch.randn(1, 77, 32, generator=torch.Generator().manual_seed(2))
    shift = 4  # a multiple of the UNet's downsampling, so its grid lines up
    with torch.no_grad(), seamless_tiling(components):
        out = components.unet(latents, 500, encoder_hidden_states=text).sample
        moved = components.unet(torch.roll(latents, shift, dims=2), 500, encoder_hidden_states=text).sample
    assert torch.allclose(torch.roll(out, shift, dims=2), moved, atol=1e-4)


def test_a_tiled_picture_differs_and_the_model_is_restored(components: Any) -> None:
    base = GenerationRequest(prompt="a cat", seed=2, steps=3, width=64, height=64, sampler="Euler")
    plain = np.asarray(generate(components, base, preview_every=0).images[0].image, dtype=np.float32)
    tiled_result = generate(components, base.model_copy(update={"tiling": True}), preview_every=0)
    tiled = np.asarray(tiled_result.images[0].image, dtype=np.float32)
    assert np.abs(plain - tiled).mean() > 1.0
    assert tiled_result.images[0].recipe.tiling is True
    assert _modes(components) == {"zeros"}
    # the seam: opposite edges of a tiled picture continue each other as neighbouring columns do
    wrap = np.abs(tiled[:, 0] - tiled[:, -1]).mean()
    inner = np.abs(np.diff(tiled, axis=1)).mean()
    assert wrap < 2.5 * inner


def test_the_model_is_restored_when_the_job_is_cancelled(components: Any) -> None:
    token = CancelToken()
    token.cancel()
    request = GenerationRequest(prompt="a cat", seed=2, steps=3, width=64, height=64, tiling=True)
    with pytest.raises(Cancelled):
        generate(components, request, cancel=token, preview_every=0)
    assert _modes(components) == {"zeros"}
