"""Latent-tiled diffusion on tiny random models: the tiles, their weights, and the picture they make."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from engine_pictures import pixels, write_mask, write_picture

from sfumato.core.errors import InvalidRequest
from sfumato.core.request import GenerationRequest, parse_request
from sfumato.core.tiling import TiledDiffusion, TiledMethod
from sfumato.engine.generate import generate
from sfumato.engine.tiled_diffusion import tile_size, tile_weights, windows
from sfumato.models.components import Components


def request(**fields: object) -> GenerationRequest:
    return GenerationRequest.model_validate(
        {"prompt": "a red circle", "steps": 3, "seed": 5, "sampler": "Euler"} | fields
    )


def test_the_tiles_cover_a_panorama_evenly() -> None:
    assert windows((288, 96), (96, 96), 48, 8) == [(0, x, 12, 12) for x in (0, 6, 12, 18, 24)]
    assert windows((288, 96), (112, 96), 24, 8) == [(0, x, 12, 14) for x in (0, 11, 22)]
    assert windows((96, 96), (96, 96), 48, 8) == [(0, 0, 12, 12)]


@pytest.mark.parametrize("method", list(TiledMethod))
def test_weights_are_positive_and_lowest_at_shared_borders(method: TiledMethod) -> None:
    window = (0, 6, 12, 12)
    weights = tile_weights(window, (12, 36), 6, method)[0, 0].numpy()
    assert weights.shape == (12, 12) and (weights > 0).all()
    assert weights[6, 0] < weights[6, 6] and weights[6, -1] < weights[6, 6]
    if method is TiledMethod.multidiffusion:  # top and bottom are the canvas's edges: no feather there
        assert (weights == weights[6]).all()


@pytest.mark.parametrize(
    ("settings", "canvas", "message"),
    [
        (TiledDiffusion(tile=256), (128, 64), "larger than the 128x64 canvas"),
        (TiledDiffusion(tile=64, overlap=64), (128, 64), "leaves nothing"),
    ],
)
def test_bad_tiles_are_clear_errors(settings: TiledDiffusion, canvas: tuple[int, int], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        tile_size(settings, 64, canvas)


def test_a_tile_larger_than_one_side_is_cut_to_it() -> None:
    assert tile_size(TiledDiffusion(tile=96), 64, (256, 64)) == (96, 64)
    with pytest.raises(InvalidRequest, match="multiple of 8"):
        parse_request({"tiled_diffusion": {"overlap": 20}})


def test_one_tile_over_the_whole_canvas_is_the_plain_render(sd1: Components) -> None:
    plain = generate(sd1, request()).images[0].image
    tiled = generate(sd1, request(tiled_diffusion={"tile": 64})).images[0].image
    assert np.abs(pixels(plain) - pixels(tiled)).max() <= 1


@pytest.mark.parametrize("model", ["sd1", "sdxl", "sd1_inpainting"])
@pytest.mark.parametrize("method", [m.value for m in TiledMethod])
def test_a_wide_canvas_renders_as_tiles(
    request_fixture: pytest.FixtureRequest, tmp_path: Path, model: str, method: str
) -> None:
    components: Components = request_fixture.getfixturevalue(model)
    fields: dict[str, object] = {
        "width": 160,
        "height": 64,
        "tiled_diffusion": {"overlap": 32, "method": method},
    }
    if model == "sd1_inpainting":
        fields |= {
            "init_image": write_picture(tmp_path / "p.png", (160, 64)),
            "mask": write_mask(tmp_path / "m.png", (40, 8, 120, 56), (160, 64)),
            "denoising_strength": 1.0,
        }
    tiled = generate(components, request(**fields))
    again = generate(components, request(**fields))
    image = tiled.images[0].image
    assert image.size == (160, 64)
    assert np.array_equal(pixels(image), pixels(again.images[0].image))
    plain = generate(components, request(**(fields | {"tiled_diffusion": None}))).images[0].image
    assert not np.array_equal(pixels(image), pixels(plain))
    assert tiled.images[0].recipe.tiled_diffusion == TiledDiffusion(overlap=32, method=TiledMethod(method))


@pytest.fixture
def request_fixture(request: pytest.FixtureRequest) -> pytest.FixtureRequest:
    return request


def test_the_hires_second_pass_is_tiled_too(sd1: Components) -> None:
    hires = {"scale": 2.0, "upscaler": "Latent", "denoising_strength": 0.5}
    tiled = generate(sd1, request(hires=hires, tiled_diffusion={"overlap": 32})).images[0].image
    plain = generate(sd1, request(hires=hires)).images[0].image
    assert tiled.size == plain.size == (128, 128)
    assert not np.array_equal(pixels(tiled), pixels(plain))
