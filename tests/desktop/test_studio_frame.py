"""What the generation frame asks for, from what lies under it; results as variants."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from PIL import Image

from sfumato.core.images import load_image
from sfumato.core.request import MaskedContent, Mode
from sfumato.desktop.model.document import Document, Layer, LayerKind, Rect
from sfumato.desktop.model.frame import build_request, plan_frame
from sfumato.desktop.ui.commands import AddLayer

PROMPT = {"prompt": "a red circle", "steps": 4, "batch_size": 2, "denoising_strength": 0.6}


def picture(size: tuple[int, int], x: int = 0, y: int = 0) -> Layer:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    return Layer.from_image("photo", Image.fromarray(pixels, "RGB"), x=x, y=y)


def test_an_empty_frame_asks_for_text_to_image_at_its_size() -> None:
    request = build_request(plan_frame(Document(), Rect(500, -20, 128, 96)), PROMPT)
    assert request.mode is Mode.txt2img
    assert (request.width, request.height, request.init_image) == (128, 96, None)


def test_a_picture_under_the_whole_frame_asks_for_image_to_image_of_the_part_under_it() -> None:
    document = Document()
    layer = document.insert(picture((200, 150), x=-50, y=-30))
    request = build_request(plan_frame(document, Rect(0, 0, 96, 96)), PROMPT)
    assert request.mode is Mode.img2img and request.denoising_strength == 0.6
    init = np.asarray(load_image(request.init_image or "", "init"))
    assert np.array_equal(init, layer.pixels[30:126, 50:146, :3])


def test_a_mask_under_the_frame_asks_to_inpaint_with_the_whole_frame_as_context() -> None:
    document = Document()
    document.insert(picture((96, 96)))
    mask = document.insert(Layer.empty_mask("Mask", Rect(0, 0, 96, 96)))
    mask.pixels[60:80, 10:30] = 255
    request = build_request(plan_frame(document, Rect(0, 0, 96, 96)), PROMPT)
    assert request.mode is Mode.inpaint and request.masked_content is MaskedContent.original
    assert (request.width, request.height) == (96, 96)
    sent = np.asarray(load_image(request.mask or "", "mask").convert("L"))
    assert np.array_equal(sent > 127, mask.pixels > 127)


def test_a_hidden_mask_is_not_sent() -> None:
    document = Document()
    document.insert(picture((96, 96)))
    mask = document.insert(Layer.empty_mask("Mask", Rect(0, 0, 96, 96)))
    mask.pixels[:] = 255
    document.set(mask.id, "visible", False)
    assert plan_frame(document, Rect(0, 0, 96, 96)).mode is Mode.img2img


@pytest.mark.parametrize(
    ("frame", "sides", "inner"),
    [
        # the frame hangs 56 px past the picture's right edge: 56 new pixels on the right
        (Rect(104, 0, 96, 96), {"left": 0, "right": 56, "top": 0, "bottom": 0}, (104, 0, 144, 96)),
        # over the top-left corner, by 20 (rounded up to 24) and 13 (to 16)
        (Rect(-20, -13, 96, 96), {"left": 24, "right": 0, "top": 16, "bottom": 0}, (4, 3, 76, 83)),
    ],
)
def test_a_frame_over_the_pictures_edge_asks_to_outpaint_the_empty_part(
    frame: Rect, sides: dict[str, int], inner: tuple[int, int, int, int]
) -> None:
    document = Document()
    layer = document.insert(picture((144, 96)))
    plan = plan_frame(document, frame)
    request = build_request(plan, PROMPT)
    assert request.mode is Mode.outpaint
    assert request.outpaint is not None
    assert request.outpaint.model_dump(include={"left", "right", "top", "bottom"}) == sides
    assert request.mask is None and request.width is None and request.height is None
    assert request.prompt == "a red circle" and request.denoising_strength == 0.6
    init = load_image(request.init_image or "", "init")
    # the known part of the frame, shrunk to whole multiples of 8 on the grown sides
    left, top, right, bottom = inner
    assert np.array_equal(np.asarray(init), layer.pixels[top:bottom, left:right, :3])
    # the grown picture is exactly the frame, so the result lands where the frame is
    assert request.outpaint.canvas(init.size)[:2] == (frame.width, frame.height)


def test_a_hole_in_the_picture_is_inpainted_from_the_fill() -> None:
    document = Document()
    layer = document.insert(picture((96, 96)))
    layer.pixels[40:50, 40:50, 3] = 0
    request = build_request(plan_frame(document, Rect(0, 0, 96, 96)), PROMPT)
    assert request.mode is Mode.inpaint and request.masked_content is MaskedContent.fill
    mask = np.asarray(load_image(request.mask or "", "mask").convert("L"))
    assert (mask[40:50, 40:50] == 255).all() and mask.sum() == 255 * 100


def test_results_come_back_as_variants_to_step_through_and_apply(window: Any, qtbot: Any) -> None:
    studio = window.studio
    window.undo.push(AddLayer(studio.document, picture((96, 96))))
    studio.move_frame(40, 0)  # over the right edge: an outpaint
    studio.prompt.update(prompt="a red circle", steps=3, batch_size=3)
    job_id = window.generate()
    assert job_id is not None
    qtbot.waitUntil(lambda: studio.jobs.variants is not None, timeout=10_000)
    variants = studio.jobs.variants
    assert len(variants.pictures) == 3 and variants.frame == Rect(40, 0, 96, 96)
    shown = window.canvas._variant
    assert shown.isVisible() and (shown.pos().x(), shown.pos().y()) == (40, 0)
    first = shown.pixmap().toImage().pixel(5, 5)
    window.actions_by_name["next"].trigger()
    assert variants.index == 1 and shown.pixmap().toImage().pixel(5, 5) != first
    layer = window.apply_variant()
    assert layer is not None and layer.kind is LayerKind.result
    assert (layer.x, layer.y, layer.width, layer.height) == (40, 0, 96, 96)
    assert tuple(layer.pixels[5, 5]) == (40, 200, 40, 255)  # the second variant's colour
    assert layer.recipe is not None and layer.recipe["prompt"] == "a red circle"
    assert studio.jobs.variants is None and not shown.isVisible()
    window.undo.undo()
    assert layer not in studio.document.layers
