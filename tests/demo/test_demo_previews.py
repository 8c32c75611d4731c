"""The demo model's live previews come from its own tiny preview decoder (demo/preview/, made by
training/preview_recipe.py): half-way through, they are closer to the final picture than the linear
latent→RGB preview, and the judge reads the final picture's background and colour on them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from PIL import Image

from sfumato.core.request import GenerationRequest
from sfumato.demo import judge
from sfumato.engine.generate import generate
from sfumato.models.loading import demo_model_folder, demo_preview_folder

pytestmark = pytest.mark.skipif(
    not (demo_preview_folder() / "config.json").is_file()
    or not (demo_model_folder() / "unet" / "config.json").is_file(),
    reason="the demo model or its preview decoder is not installed",
)

PREVIEW_STEP = 10


@pytest.fixture(scope="module")
def components() -> Any:
    from sfumato.core.settings import Settings
    from sfumato.models.loading import load_model

    return load_model(Settings(), None)


def _psnr(a: Image.Image, b: Image.Image) -> float:
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    return float(10 * np.log10(255.0**2 / max(float((diff**2).mean()), 1e-9)))


def _render(components: Any, request: GenerationRequest) -> tuple[Image.Image, dict[int, Image.Image]]:
    previews: dict[int, Image.Image] = {}

    def keep(progress: Any) -> None:
        if progress.preview is not None:
            previews[progress.step] = progress.preview

    result = generate(components, request, preview_every=5, on_progress=keep)
    return result.images[0].image, previews


@pytest.mark.parametrize(
    ("prompt", "seed"),
    [
        ("a red circle in the center on a white background", 1),
        ("a big yellow star in the middle, black background", 3),
    ],
)
def test_previews_resemble_the_final_picture(components: Any, prompt: str, seed: int) -> None:
    request = GenerationRequest(prompt=prompt, seed=seed, steps=20, sampler="Euler")
    assert components.preview_decoder is not None
    final, decoded = _render(components, request)
    decoder, components.preview_decoder = components.preview_decoder, None
    try:
        _, linear = _render(components, request)
    finally:
        components.preview_decoder = decoder
    assert _psnr(decoded[PREVIEW_STEP], final) > _psnr(linear[PREVIEW_STEP], final) + 3
    seen, expected = judge.judge(decoded[PREVIEW_STEP]), judge.judge(final)
    assert seen.background == expected.background
    assert {o.colour for o in seen.objects} == {o.colour for o in expected.objects}, (seen, expected)
