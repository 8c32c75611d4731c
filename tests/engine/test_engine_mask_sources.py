"""Masks made from a box, a scribble (GrabCut) or an object the demo judge finds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from sfumato.core.errors import InvalidRequest
from sfumato.core.images import to_data_uri
from sfumato.core.inpainting import MaskFrom
from sfumato.core.request import GenerationRequest, Mode, parse_request
from sfumato.demo import world
from sfumato.engine.generate import generate
from sfumato.engine.mask_sources import make_mask
from sfumato.models.components import Components

SCENE = world.Scene(
    (
        world.SceneObject("circle", "red", "center", "large"),
        world.SceneObject("square", "blue", "top left", "small"),
    ),
    "white",
)


@pytest.fixture(scope="module")
def scene() -> Image.Image:
    return world.render(SCENE)


def _circle(scene: Image.Image) -> np.ndarray:
    return np.linalg.norm(np.asarray(scene, dtype=np.float64) - world.COLOURS["red"], axis=-1) < 60


def _overlap(mask: Image.Image, truth: np.ndarray) -> float:
    """Intersection over union of the mask with the true object."""
    ours = np.asarray(mask) > 127
    return float((ours & truth).sum() / (ours | truth).sum())


def test_a_box_is_masked_as_given_and_clipped_to_the_picture(scene: Image.Image) -> None:
    mask, notes = make_mask(scene, MaskFrom(box=(80, 10, 40, 8)))
    assert mask.getbbox() == (80, 10, 96, 18) and notes == []


def test_grabcut_narrows_a_box_to_the_circle_in_it(scene: Image.Image) -> None:
    box, _ = make_mask(scene, MaskFrom(box=(26, 26, 44, 44)))
    cut, _ = make_mask(scene, MaskFrom(box=(26, 26, 44, 44), grabcut=True))
    assert _overlap(box, _circle(scene)) < 0.5 < 0.9 < _overlap(cut, _circle(scene))
    again, _ = make_mask(scene, MaskFrom(box=(26, 26, 44, 44), grabcut=True))
    assert np.array_equal(np.asarray(cut), np.asarray(again))  # the same picture and box, the same mask


def test_a_scribble_over_the_circle_masks_the_circle(scene: Image.Image) -> None:
    strokes = Image.new("L", scene.size, 0)
    ImageDraw.Draw(strokes).line([(42, 48), (54, 48)], fill=255, width=3)
    mask, _ = make_mask(scene, MaskFrom(scribble=to_data_uri(strokes)))
    assert _overlap(mask, _circle(scene)) > 0.85


def test_the_detector_box_of_a_named_object(scene: Image.Image) -> None:
    mask, _ = make_mask(scene, MaskFrom(object="red circle"))
    left, top, right, bottom = mask.getbbox() or (0, 0, 0, 0)
    assert left <= 34 and top <= 34 and right >= 62 and bottom >= 62 and right - left < 40
    square, _ = make_mask(scene, MaskFrom(object="blue square", grabcut=True))
    assert (square.getbbox() or (99,))[0] < 20 and _overlap(square, _circle(scene)) == 0


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (MaskFrom(object="green star"), "No green star was found"),
        (MaskFrom(object="something"), "names no object"),
        (MaskFrom(box=(200, 0, 8, 8)), "starts outside"),
        (MaskFrom(scribble=to_data_uri(Image.new("L", (96, 96), 0))), "no white strokes"),
        (MaskFrom(scribble=to_data_uri(Image.new("L", (32, 32), 255))), "scribble is 32x32"),
    ],
)
def test_sources_that_give_no_mask_are_clear_errors(
    scene: Image.Image, source: MaskFrom, message: str
) -> None:
    with pytest.raises(InvalidRequest, match=message):
        make_mask(scene, source)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"mask_from": {}}, "exactly one of box, scribble or object"),
        ({"mask_from": {"box": [0, 0, 8, 8], "object": "red circle"}}, "got box, object"),
        ({"mask_from": {"box": [0, 0, 0, 8]}}, "width and height above 0"),
        ({"mask_from": {"box": [0, 0, 8, 8]}, "mask": "m.png"}, "no mask"),
        ({"mask_from": {"object": "red circle"}, "init_image": None}, "give an init image"),
    ],
)
def test_bad_mask_sources_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        parse_request({"init_image": "x.png"} | fields)


def test_inpainting_from_a_box_repaints_only_the_box(sd1: Components, scene: Image.Image) -> None:
    request = GenerationRequest(
        prompt="a red circle",
        steps=3,
        seed=1,
        init_image=to_data_uri(scene),
        mask_from=MaskFrom(box=(8, 8, 24, 24)),
        mask_blur=0,
        width=96,
        height=96,
    )
    assert request.mode is Mode.inpaint
    out = np.asarray(generate(sd1, request).images[0].image, dtype=np.int16)
    original = np.asarray(scene, dtype=np.int16)
    outside = np.ones(out.shape[:2], dtype=bool)
    outside[8:32, 8:32] = False
    assert np.array_equal(out[outside], original[outside])
    assert np.abs(out[8:32, 8:32] - original[8:32, 8:32]).mean() > 1


def test_cli_inpaint_needs_a_mask_or_a_way_to_make_one(tmp_path: Path, scene: Image.Image) -> None:
    from typer.testing import CliRunner

    from sfumato.cli.main import app

    init = tmp_path / "scene.png"
    scene.save(init)
    result = CliRunner().invoke(app, ["inpaint", "--init", str(init), "a red circle"])
    assert result.exit_code == 1 and "--mask-box" in result.output
    result = CliRunner().invoke(app, ["inpaint", "--init", str(init), "x", "--mask-box", "1,2,3"])
    assert result.exit_code == 1 and "X,Y,WIDTH,HEIGHT" in result.output
