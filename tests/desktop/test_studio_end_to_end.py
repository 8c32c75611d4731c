"""End to end with the built-in model, through the studio's own actions: a picture made in the
frame, then part of it masked and inpainted; the judge reads both pictures as asked."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from sfumato.core.request import Mode
from sfumato.core.settings import Settings
from sfumato.demo import judge
from sfumato.desktop.model.document import LayerKind, Rect


@pytest.fixture
def real_window(qtbot: Any) -> Iterator[Any]:
    from sfumato.desktop.app import build_window

    window = build_window(Settings())  # the engine in-process, the built-in model
    qtbot.addWidget(window)
    window.show()
    yield window
    window.bridge.stop()


def _generate_and_apply(window: Any, qtbot: Any) -> Image.Image:
    job_id = window.generate()
    assert job_id is not None
    jobs = window.studio.jobs
    qtbot.waitUntil(lambda: jobs.jobs[job_id].state in ("finished", "failed", "cancelled"), timeout=120_000)
    assert jobs.jobs[job_id].state == "finished", jobs.jobs[job_id].message
    layer = window.apply_variant()  # the first variant
    assert layer is not None and layer.kind is LayerKind.result
    frame = window.studio.frame.rect
    return Image.fromarray(window.studio.document.composite(frame)[..., :3], "RGB")


def test_txt2img_in_a_frame_then_inpaint_a_masked_part(real_window: Any, qtbot: Any) -> None:
    window, studio = real_window, real_window.studio
    assert (studio.frame.width, studio.frame.height) == (96, 96)  # the built-in model's size
    studio.move_frame(200, 100)
    studio.prompt.update(prompt="a red circle at the top left on a white background", seed=1, batch_size=1)
    assert studio.plan().mode is Mode.txt2img
    first = _generate_and_apply(window, qtbot)
    read = judge.judge(first)
    assert read.background == "white", read
    assert any(o.colour == "red" and o.position == "top left" for o in read.objects), read

    # mask the bottom right corner with a selection, and ask for a blue square there
    studio.set_selection(Rect(200 + 56, 100 + 56, 40, 40))
    window.fill_mask_from_selection()
    studio.prompt.update(
        prompt="a large blue square at the bottom right on a white background", denoising_strength=1.0
    )
    assert studio.plan().mode is Mode.inpaint
    studio.document.set(studio.active_mask().id, "visible", False)
    assert studio.plan().mode is Mode.img2img  # a hidden mask is not used ...
    studio.document.set(studio.active_mask().id, "visible", True)  # ... a shown one is
    second = _generate_and_apply(window, qtbot)
    read = judge.judge(second)
    assert read.background == "white", read
    assert any(o.colour == "blue" and o.position == "bottom right" for o in read.objects), read
    assert any(o.colour == "red" and o.position == "top left" for o in read.objects), read
    results = [layer for layer in studio.document.layers if layer.kind is LayerKind.result]
    assert [layer.recipe["prompt"] for layer in results if layer.recipe] == [
        "a red circle at the top left on a white background",
        "a large blue square at the bottom right on a white background",
    ]
