"""Inversion (recovering a picture's noise) and editing by prompt: mechanics on a tiny model, then
what the demo model does, read by the judge."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from sfumato.core.errors import InvalidRequest
from sfumato.core.request import GenerationRequest
from sfumato.demo import judge, world
from sfumato.engine import inversion as inv
from sfumato.engine.edit import describes_background, edit
from sfumato.engine.generate import generate
from sfumato.models.components import Components

MODEL = Path(world.__file__).parent / "model"
demo_only = pytest.mark.skipif(not (MODEL / "unet" / "config.json").is_file(), reason="no demo model")


def test_a_ddim_step_and_its_inverse_meet() -> None:
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    eps = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    up = inv.ddim_step(x, eps, 0.9, 0.3)
    assert torch.allclose(inv.ddim_step(up, eps, 0.3, 0.9), x, atol=1e-5)


def test_fixed_point_inversion_retraces_the_path_ddim_only_approximates(sd1: Components) -> None:
    picture = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    latents = inv.picture_latents(sd1, picture)
    plan = inv.schedule(sd1, 25)
    predict = inv.prompt_predictor(sd1, "a cat", plan, (64, 64))
    errors = {}
    for method in ("ddim", "fixed-point"):
        inversion = inv.invert_latents(latents, plan, predict, method, iterations=20)  # pyright: ignore[reportArgumentType]
        back = inv.regenerate_latents(inversion, predict)
        errors[method] = float((back - latents).norm() / latents.norm())
    assert errors["fixed-point"] < errors["ddim"] / 10


def test_bad_inversion_settings_are_refused(sd1: Components) -> None:
    with pytest.raises(InvalidRequest, match="inversion method"):
        inv.invert_latents(torch.zeros(1, 4, 8, 8), inv.schedule(sd1, 2), lambda x, i: x, "newton")  # pyright: ignore[reportArgumentType]
    with pytest.raises(InvalidRequest, match="out of range"):
        inv.schedule(sd1, 0)


@pytest.mark.parametrize(
    ("source", "target", "background"),
    [
        ("a red circle on a white background", "a red circle on a green background", True),
        ("a red circle on a white background", "a blue circle on a white background", False),
        ("a star, bg: black", "a star, bg: yellow", False),
        ("a cat on the sofa", "a cat on a grey backdrop", True),
    ],
)
def test_background_edits_are_told_from_the_words(source: str, target: str, background: bool) -> None:
    assert describes_background(source, target) is background


@pytest.fixture(scope="module")
def demo() -> Any:
    from sfumato.core.settings import Settings
    from sfumato.models.loading import load_model

    return load_model(Settings(), None)


def _draw(demo: Any, prompt: str, seed: int) -> Image.Image:
    return generate(demo, GenerationRequest(prompt=prompt, seed=seed, steps=20)).images[0].image


@demo_only
def test_inverting_then_regenerating_gives_the_picture_back(demo: Any) -> None:
    prompt = "a red circle on a white background"
    rendered = world.render(world.Scene((world.SceneObject("circle", "red", "left", "large"),), "white"))
    for picture in (_draw(demo, prompt, 2), rendered):
        inversion = inv.invert(demo, picture, prompt, steps=10)
        assert inv.psnr(picture, inv.regenerate(demo, inversion, prompt)) >= 30


def _outside_box_change(before: Image.Image, after: Image.Image, box: tuple[int, int, int, int]) -> float:
    """Share of the pixels outside ``box`` whose colour moved by more than 5% of the range."""
    a, b = np.asarray(before, float), np.asarray(after, float)
    outside = np.ones(a.shape[:2], bool)
    left, top, right, bottom = box
    outside[top:bottom, left:right] = False
    changed = np.abs(a - b).max(-1) / 255 > 0.05
    return float(changed[outside].mean())


@demo_only
@pytest.mark.parametrize("seed", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_an_edit_changes_the_objects_colour_and_keeps_the_rest(demo: Any, seed: int) -> None:
    before = _draw(demo, "a red circle on a white background", seed)
    source = judge.judge(before)
    assert [(o.colour, o.shape) for o in source.objects] == [("red", "circle")]
    result = edit(demo, before, "a red circle on a white background", "a blue circle on a white background")
    after = judge.judge(result.picture)
    assert [(o.colour, o.shape) for o in after.objects] == [("blue", "circle")]
    assert after.background == "white"
    assert _outside_box_change(before, result.picture, source.objects[0].box) < 0.05


@demo_only
@pytest.mark.parametrize("seed", [2, pytest.param(3, marks=pytest.mark.slow)])
def test_changing_the_background_word_changes_the_background_and_keeps_the_object(
    demo: Any, seed: int
) -> None:
    before = _draw(demo, "a red circle on a white background", seed)
    source = judge.judge(before)
    result = edit(demo, before, "a red circle on a white background", "a red circle on a green background")
    after = judge.judge(result.picture)
    assert after.background == "green"
    kept = source.objects[0]
    assert any(
        (o.colour, o.shape, o.position) == (kept.colour, kept.shape, kept.position) for o in after.objects
    )
    left, top, right, bottom = kept.box
    object_before = np.asarray(before, float)[top:bottom, left:right]
    object_after = np.asarray(result.picture, float)[top:bottom, left:right]
    inside = (
        np.linalg.norm(object_before - np.array([255.0, 255.0, 255.0]), axis=-1) > 100
    )  # the object's pixels
    assert np.abs(object_after - object_before).max(-1)[inside].mean() / 255 < 0.05
