"""Hires fix on tiny random models: sizes, upscalers, the second pass's own settings, the recipe."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from engine_pictures import pixels

from sfumato.core.errors import InvalidRequest
from sfumato.core.events import StepProgress
from sfumato.core.request import HIRES_UPSCALERS, GenerationRequest, Hires, parse_request
from sfumato.engine.generate import generate
from sfumato.models.components import Components


def request(**hires: Any) -> GenerationRequest:
    return GenerationRequest(
        prompt="a red circle", steps=4, seed=3, sampler="Euler", width=64, height=64, hires=Hires(**hires)
    )


@pytest.mark.parametrize(
    ("hires", "size", "target"),
    [
        ({}, (64, 64), (128, 128)),
        ({"scale": 1.5}, (64, 96), (96, 144)),
        ({"scale": 1.3}, (64, 64), (80, 80)),  # 83.2 -> down to a multiple of 8, as A1111
        ({"resize_x": 200}, (96, 64), (200, 128)),  # the other side keeps the aspect ratio
        ({"resize_x": 160, "resize_y": 96, "scale": 4}, (64, 64), (160, 96)),  # sizes win over the scale
    ],
)
def test_the_second_pass_size(hires: dict[str, Any], size: tuple[int, int], target: tuple[int, int]) -> None:
    assert Hires(**hires).target(*size) == target


@pytest.mark.parametrize("upscaler", HIRES_UPSCALERS)
def test_every_upscaler_makes_the_larger_picture(sd1: Components, upscaler: str) -> None:
    image = generate(sd1, request(upscaler=upscaler, resize_x=96, resize_y=80)).images[0].image
    assert image.size == (96, 80)


def test_the_second_pass_runs_its_own_steps_and_its_recipe_reproduces_it(sd1: Components) -> None:
    events: list[StepProgress] = []
    asked = request(steps=6, denoising_strength=0.5)
    result = generate(sd1, asked, on_progress=events.append, preview_every=1)
    image = result.images[0]
    assert image.image.size == (128, 128)
    # 4 first-pass steps, then 3 of the second pass's 6 (denoising strength 0.5), counted as one job.
    assert [e.step for e in events] == list(range(1, 8)) and {e.steps for e in events} == {7}
    assert events[3].preview is not None and events[3].preview.size == (64, 64)
    assert events[-1].preview is not None and events[-1].preview.size == (128, 128)
    assert (image.recipe.width, image.recipe.height) == (64, 64) and image.recipe.hires == asked.hires
    again = generate(sd1, parse_request(image.recipe.model_dump(mode="json")))
    assert np.array_equal(pixels(again.images[0].image), pixels(image.image))


def test_the_second_pass_follows_its_own_prompt_sampler_and_denoise(sd1: Components) -> None:
    base = pixels(generate(sd1, request()).images[0].image)
    for change in ({"prompt": "a blue square"}, {"sampler": "DDIM"}, {"denoising_strength": 0.3}):
        other = pixels(generate(sd1, request(**change)).images[0].image)
        assert not np.array_equal(other, base), change


def test_hires_on_an_inpainting_unet(sd1_inpainting: Components) -> None:
    assert generate(sd1_inpainting, request(scale=1.5)).images[0].image.size == (96, 96)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"hires": {"upscaler": " "}}, "hires.upscaler: unknown upscaler ' '"),
        ({"hires": {"scale": 0.5}}, "hires.scale: Input should be greater than or equal to 1"),
        ({"hires": {"sampler": "Euler b"}}, "unknown sampler 'Euler b'"),
        ({"hires": {}, "init_image": "in.png"}, "hires fix is for text to image"),
    ],
)
def test_bad_hires_requests_say_what_is_wrong(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        parse_request(fields)
