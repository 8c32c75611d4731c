"""Tiled upscaling on tiny random models: tiles that cover the picture, feathers, the recipe."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from engine_pictures import pixels, write_picture

from sfumato.core.errors import InvalidRequest
from sfumato.core.events import StepProgress
from sfumato.core.request import GenerationRequest, Upscale, parse_request
from sfumato.engine.generate import generate
from sfumato.engine.tiled_upscale import feather, tile_starts
from sfumato.models.components import Components


@pytest.mark.parametrize(
    ("length", "tile", "overlap"), [(384, 96, 32), (160, 64, 16), (64, 64, 8), (200, 64, 0)]
)
def test_tiles_cover_the_picture_and_overlap(length: int, tile: int, overlap: int) -> None:
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0 and starts[-1] + tile == length
    assert all(b - a <= tile - overlap for a, b in itertools.pairwise(starts))


def test_feathers_rise_across_the_overlap_with_neighbours_only() -> None:
    weight = feather((64, 64), 16, (True, False, False, True))
    assert weight[0, 0] < 0.1 and weight[-1, 0] == 1.0 and weight[32, 32] == 1.0
    assert weight[32, -1] < 0.1 and (np.diff(weight[:16, 0]) > 0).all()


def request(init: str, **upscale: Any) -> GenerationRequest:
    return GenerationRequest(
        prompt="a red circle",
        steps=4,
        seed=3,
        sampler="Euler",
        init_image=init,
        denoising_strength=0.5,
        upscale=Upscale(**upscale),
    )


def test_upscale_enlarges_tile_by_tile_and_its_recipe_reproduces_it(sd1: Components, tmp_path: Path) -> None:
    init = write_picture(tmp_path / "in.png", (64, 48))
    events: list[StepProgress] = []
    result = generate(sd1, request(init, scale=2.5, overlap=16), on_progress=events.append)
    image = result.images[0]
    assert image.image.size == (160, 120)
    # 3 x 3 tiles of 64 pixels, 2 steps each (strength 0.5 of 4), counted as one job.
    assert len(tile_starts(160, 64, 16)) == len(tile_starts(120, 64, 16)) == 3
    assert events[-1].step == events[-1].steps == 18
    again = generate(sd1, parse_request(image.recipe.model_dump(mode="json")))
    assert np.array_equal(pixels(again.images[0].image), pixels(image.image))


@pytest.mark.parametrize(
    ("upscale", "message"),
    [
        ({"tile": 256}, "The tiles (256 pixels) are larger than the upscaled picture (128x128)"),
        ({"overlap": 64}, "An overlap of 64 pixels leaves nothing of 64-pixel tiles"),
    ],
)
def test_bad_tiles_say_what_is_wrong(
    sd1: Components, tmp_path: Path, upscale: dict[str, Any], message: str
) -> None:
    init = write_picture(tmp_path / "in.png")
    with pytest.raises(InvalidRequest, match=re.escape(message)):
        generate(sd1, request(init, **upscale))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"upscale": {"scale": 2}}, "tiled upscaling takes an init picture alone"),
        ({"upscale": {"scale": 1}}, "upscale.scale: Input should be greater than 1"),
        ({"upscale": {"tile": 100}, "init_image": "in.png"}, "100 is not a multiple of 8; try 96"),
    ],
)
def test_bad_upscale_requests(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        parse_request(fields)
