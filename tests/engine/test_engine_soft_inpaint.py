"""Soft inpainting and the automatic context of only-masked inpainting, on tiny random models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from engine_pictures import pixels, write_mask, write_picture
from PIL import Image, ImageDraw

from sfumato.core.inpainting import SoftInpainting
from sfumato.core.request import GenerationRequest
from sfumato.engine.generate import generate
from sfumato.engine.masks import context_padding, mask_box
from sfumato.engine.soft_inpaint import mix, soft_composite
from sfumato.models.components import Components


@pytest.fixture
def picture(tmp_path: Path) -> str:
    return write_picture(tmp_path / "init.png")


def _grey_mask(path: Path) -> str:
    """Full strength in the middle, half strength in a ring around it, nothing outside."""
    mask = Image.new("L", (64, 64), 0)
    draw = ImageDraw.Draw(mask)
    draw.rectangle([16, 16, 47, 47], fill=128)
    draw.rectangle([24, 24, 39, 39], fill=255)
    mask.save(path)
    return str(path)


def request(**fields: object) -> GenerationRequest:
    return GenerationRequest.model_validate(
        {"prompt": "a red circle", "steps": 4, "seed": 7, "sampler": "Euler", "denoising_strength": 1.0}
        | fields
    )


@pytest.mark.parametrize(("side", "padding"), [(4, 32), (16, 32), (60, 45), (64, 48)])
def test_context_grows_with_the_masked_area(side: int, padding: int) -> None:
    mask = Image.new("L", (256, 256), 0)
    mask.paste(255, (100, 100, 100 + side, 100 + side))
    assert context_padding(mask) == padding
    box = mask_box(mask, context_padding(mask), (256, 256))
    assert box is not None and box[2] - box[0] >= min(256, side + 2 * padding)
    assert context_padding(Image.new("L", (64, 64), 0)) == 0


def test_only_masked_without_padding_chooses_it_and_records_none(
    sd1: Components, picture: str, tmp_path: Path
) -> None:
    mask = write_mask(tmp_path / "m.png", (28, 28, 36, 36))
    auto = generate(sd1, request(init_image=picture, mask=mask, inpaint_only_masked=True, mask_blur=0))
    # The automatic padding (32 for an 8-pixel area) is the same render as asking for 32.
    given = generate(
        sd1,
        request(
            init_image=picture,
            mask=mask,
            inpaint_only_masked=True,
            inpaint_only_masked_padding=32,
            mask_blur=0,
        ),
    )
    assert np.array_equal(pixels(auto.images[0].image), pixels(given.images[0].image))
    assert auto.images[0].recipe.inpaint_only_masked_padding is None


def test_soft_composite_keeps_unmasked_pixels_and_follows_mask_strength() -> None:
    old = Image.new("RGB", (4, 1), (0, 0, 0))
    new = Image.new("RGB", (4, 1), (200, 200, 200))
    mask = Image.new("L", (4, 1))
    mask.putdata([0, 64, 128, 255])
    out = pixels(soft_composite(new, old, mask, SoftInpainting(mask_influence=1.0)))[0, :, 0]
    assert out[0] == 0 and out[3] == 200 and 0 < out[1] < out[2] < 200
    # By the change: a pixel the render barely touched keeps the original, a changed one takes the render.
    new.putpixel((3, 0), (200, 200, 200))
    touched = Image.new("RGB", (4, 1), (0, 0, 0))
    touched.putpixel((3, 0), (200, 200, 200))
    touched.putpixel((2, 0), (10, 10, 10))
    full = Image.new("L", (4, 1), 255)
    out = pixels(soft_composite(touched, old, full, SoftInpainting()))[0, :, 0]
    assert out[3] == 200 and out[2] < 10


def test_mix_keeps_the_length_of_equal_vectors_that_averaging_shortens() -> None:
    a = torch.tensor([1.0, 0, 0, 0]).reshape(1, 4, 1, 1)
    b = torch.tensor([0, 1.0, 0, 0]).reshape(1, 4, 1, 1)
    half = torch.full((1, 1, 1, 1), 0.5)
    mixed = mix(a, b, half, 4.0)
    assert torch.linalg.vector_norm(mixed).item() == pytest.approx(1.0, abs=1e-5)
    assert torch.linalg.vector_norm(a * 0.5 + b * 0.5).item() < 0.75
    assert torch.equal(mix(a, b, torch.zeros_like(half), 4.0), a)


@pytest.mark.parametrize("inpainting_unet", [False, True], ids=["4-channel", "9-channel"])
def test_soft_inpainting_honours_grey_levels_and_keeps_the_rest(
    sd1: Components, sd1_inpainting: Components, picture: str, tmp_path: Path, inpainting_unet: bool
) -> None:
    components = sd1_inpainting if inpainting_unet else sd1
    mask = _grey_mask(tmp_path / "grey.png")
    base = dict(init_image=picture, mask=mask, mask_blur=0)
    hard = generate(components, request(**base)).images[0].image
    soft = generate(components, request(**base, soft_inpainting={})).images[0].image
    original, out = pixels(Image.open(picture)), pixels(soft)
    strength = np.asarray(Image.open(mask))
    assert np.array_equal(out[strength == 0], original[strength == 0])  # unmasked: exactly the original
    assert not np.array_equal(out, pixels(hard))
    # Half-strength pixels stay nearer the original than fully masked ones.
    change = np.abs(out - original).mean(-1)
    assert change[strength == 128].mean() < change[strength == 255].mean()
    assert (
        generate(components, request(**base, soft_inpainting={})).images[0].recipe.soft_inpainting is not None
    )


def test_soft_settings_out_of_range_are_refused() -> None:
    from sfumato.core.errors import InvalidRequest
    from sfumato.core.request import parse_request

    with pytest.raises(InvalidRequest, match="transition_contrast_boost"):
        parse_request({"soft_inpainting": {"transition_contrast_boost": 0}})


def test_soft_inpainting_travels_in_a1111_infotext_and_back() -> None:
    from sfumato.archive.infotext import infotext, request_from_infotext
    from sfumato.core.result import ModelInfo

    recipe = GenerationRequest.model_validate(
        {
            "prompt": "a red circle",
            "seed": 1,
            "width": 64,
            "height": 64,
            "init_image": "in.png",
            "mask": "m.png",
            "soft_inpainting": {"schedule_bias": 1.5, "mask_influence": 0.25},
            "inpaint_only_masked": True,
        }
    )
    text = infotext(recipe, ModelInfo("m"))
    assert "Soft inpainting enabled: True" in text and "Soft inpainting schedule bias: 1.5" in text
    assert "Masked area padding" not in text  # chosen from the mask: nothing to write
    back = request_from_infotext(text)
    assert back.soft_inpainting == recipe.soft_inpainting
    assert back.inpaint_only_masked_padding is None
