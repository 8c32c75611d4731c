"""Outpainting on tiny random models: the grown canvas, what is kept, what is re-rendered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from engine_pictures import pixels, write_picture
from PIL import Image

from sfumato.core.errors import InvalidRequest
from sfumato.core.request import GenerationRequest, Mode, Outpaint, OutpaintFill, parse_request
from sfumato.engine.generate import generate
from sfumato.engine.outpaint import margins, prefill, seam_mask
from sfumato.models.components import Components


def request(init: str, **sides: Any) -> GenerationRequest:
    return GenerationRequest(
        prompt="a red circle", steps=4, seed=3, sampler="Euler", init_image=init, outpaint=Outpaint(**sides)
    )


@pytest.fixture
def picture(tmp_path: Path) -> str:
    return write_picture(tmp_path / "init.png")


@pytest.mark.parametrize(
    ("size", "sides", "canvas", "grow"),
    [
        ((64, 64), {"top": 16}, (64, 80, 0, 16), (16, 0, 0, 0)),
        ((64, 64), {"top": 5, "right": 9}, (80, 72, 0, 8), (8, 0, 0, 16)),  # rounded up to 8
        ((60, 64), {"left": 8}, (72, 64, 8, 0), (0, 0, 8, 4)),  # odd width: right grows to the next 8
    ],
)
def test_the_canvas_grows_by_multiples_of_8(
    size: tuple[int, int], sides: dict[str, int], canvas: tuple[int, ...], grow: tuple[int, ...]
) -> None:
    outpaint = Outpaint.model_validate(sides)
    assert outpaint.canvas(size) == canvas
    assert margins(outpaint, size) == grow


def test_prefills_keep_the_picture_and_paint_the_new_area_from_its_edge(picture: str) -> None:
    original = Image.open(picture).convert("RGB")
    grow = (16, 0, 8, 0)
    for fill in OutpaintFill:
        canvas = pixels(prefill(original, grow, fill))
        assert canvas.shape == (80, 72, 3)
        assert np.array_equal(canvas[16:, 8:], pixels(original)), fill
    edge = pixels(prefill(original, grow, OutpaintFill.edge_stretch))
    assert np.array_equal(edge[0, 8:], pixels(original)[0])  # the top row stretched upwards
    mirror = pixels(prefill(original, grow, OutpaintFill.blurred_mirror))
    # Mirrored: near the edge the new rows look like the first known rows, only smoother.
    assert np.abs(mirror[15, 8:] - pixels(original)[0]).mean() < 20
    assert np.abs(np.diff(mirror[:16, 8:], axis=1)).mean() <= np.abs(np.diff(pixels(original), axis=1)).mean()


def test_the_seam_mask_covers_the_new_area_and_fades_over_the_band() -> None:
    mask = np.asarray(seam_mask((64, 80), (16, 0, 0, 0), seam=8), dtype=np.int16)
    assert (mask[:16] == 255).all()
    band = mask[16:24, 0]
    assert (np.diff(band) < 0).all() and band[0] > 200 and band[-1] < 30
    assert (mask[24:] == 0).all()


@pytest.mark.parametrize("inpainting_unet", [False, True], ids=["4-channel", "9-channel"])
def test_outpaint_grows_the_picture_and_keeps_what_lies_beyond_the_seam(
    sd1: Components, sd1_inpainting: Components, picture: str, inpainting_unet: bool
) -> None:
    components = sd1_inpainting if inpainting_unet else sd1
    asked = request(picture, top=16, left=8, seam=8)
    assert asked.mode is Mode.outpaint
    result = generate(components, asked)
    image = result.images[0].image
    assert image.size == (72, 80)
    out, original = pixels(image), pixels(Image.open(picture))
    known = out[16:, 8:]
    assert np.array_equal(known[8:, 8:], original[8:, 8:])  # beyond the seam band: the picture itself
    assert np.abs(known[:2, :] - original[:2, :]).mean() > 1  # the band is re-rendered
    assert np.abs(out[:8, :] - known[:1, :].mean(axis=(0, 1))).mean() > 0  # the new area holds a render

    recipe = result.images[0].recipe
    assert (recipe.width, recipe.height) == (72, 80) and recipe.outpaint == asked.outpaint
    again = generate(components, parse_request(recipe.model_dump(mode="json")))
    assert np.array_equal(pixels(again.images[0].image), out)


def test_latent_noise_starts_the_new_area_from_fresh_noise(sd1: Components, picture: str) -> None:
    mirror = generate(sd1, request(picture, bottom=16)).images[0].image
    noise = generate(sd1, request(picture, bottom=16, fill="latent noise")).images[0].image
    assert np.abs(pixels(mirror)[64:] - pixels(noise)[64:]).mean() > 1


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"outpaint": {"top": 0}}, "outpainting by 0 on every side changes nothing"),
        ({"outpaint": {"top": -8}}, "outpaint.top: Input should be greater than or equal to 0"),
        ({"outpaint": {"top": 8}, "init_image": None}, "outpainting needs the picture to grow"),
        ({"outpaint": {"top": 8}, "mask": "m.png"}, "give either a mask or outpaint sides"),
        ({"outpaint": {"top": 8, "fill": "clouds"}}, "outpaint.fill: Input should be"),
    ],
)
def test_bad_outpaint_requests_say_what_is_wrong(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        parse_request({"init_image": "in.png", **fields})


def test_a_size_that_is_not_the_canvas_is_refused(sd1: Components, picture: str) -> None:
    asked = request(picture, top=16).model_copy(update={"width": 64, "height": 64})
    with pytest.raises(InvalidRequest, match="makes a 64x80 canvas, not 64x64"):
        generate(sd1, asked)
