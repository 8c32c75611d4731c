"""Outpainting areas larger than the native size, tile after tile, on tiny random models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from engine_pictures import pixels, write_picture
from PIL import Image

from sfumato.core.events import StepProgress
from sfumato.core.request import GenerationRequest, Outpaint, parse_request
from sfumato.engine.generate import generate
from sfumato.engine.outpaint_tiles import repaint_mask, tile_order, wants_tiles
from sfumato.models.components import Components


@pytest.fixture
def picture(tmp_path: Path) -> str:
    return write_picture(tmp_path / "in.png")


def request(init: str, **sides: object) -> GenerationRequest:
    return GenerationRequest(
        prompt="a red circle",
        steps=4,
        seed=3,
        sampler="Euler",
        init_image=init,
        outpaint=Outpaint.model_validate(sides),
    )


def test_tiles_start_next_to_the_picture_and_leave_out_what_is_known() -> None:
    # A 64-pixel picture grown 128 to the right: tiles of 64 overlapping by 16, the known one skipped.
    order = tile_order((192, 64), (0, 0, 64, 64), (64, 64))
    assert order == [(40, 0), (88, 0), (128, 0)]
    # Grown on both sides: the two tiles beside the picture come before those further out.
    both = tile_order((320, 64), (128, 0, 192, 64), (64, 64))
    assert {both[0], both[1]} == {(88, 0), (168, 0)} and both[-1] in {(0, 0), (256, 0)}


def test_the_repaint_mask_fades_into_what_is_known() -> None:
    done = np.zeros((4, 16), dtype=bool)
    done[:, :8] = True
    mask = np.asarray(repaint_mask(done, 4), dtype=np.int16)[0]
    assert (mask[8:] == 255).all() and (mask[:4] == 0).all()
    assert (np.diff(mask[4:9]) > 0).all()


def test_automatic_above_twice_the_native_size(sd1: Components, picture: str) -> None:
    assert not wants_tiles(sd1, request(picture, right=64))  # 128 wide: twice the native 64
    assert wants_tiles(sd1, request(picture, right=72))
    assert not wants_tiles(sd1, request(picture, right=128, tiled=False))
    assert wants_tiles(sd1, request(picture, top=8, tiled=True))


def test_a_wide_outpaint_keeps_the_picture_and_fills_the_rest_tile_by_tile(
    sd1: Components, picture: str
) -> None:
    events: list[StepProgress] = []
    result = generate(sd1, request(picture, right=128, seam=8), on_progress=events.append)
    image = pixels(result.images[0].image)
    assert image.shape == (64, 192, 3)
    assert np.array_equal(image[:, : 64 - 8], pixels(Image.open(picture))[:, : 64 - 8])
    assert np.abs(np.diff(image[:, 64:].astype(np.int16), axis=1)).mean() > 0  # drawn, not left flat
    assert events[-1].step == events[-1].steps == 3 * 3  # three tiles, 3 steps each (0.75 of 4)
    again = generate(sd1, parse_request(result.images[0].recipe.model_dump(mode="json")))
    assert np.array_equal(pixels(again.images[0].image), image)
