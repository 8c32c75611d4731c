"""The queue panel (progress, live previews, cancel) and the gallery (search, recipe, use it)."""

from __future__ import annotations

from typing import Any

from PIL import Image

from sfumato.archive.index import Archive
from sfumato.core.request import GenerationRequest
from sfumato.core.result import GeneratedImage, ModelInfo
from sfumato.core.settings import Settings


def test_a_jobs_progress_and_preview_reach_the_queue_panel(window: Any, qtbot: Any, fake_run: Any) -> None:
    fake_run.gate.clear()  # the fake engine waits before each step until the test lets it go
    window.studio.prompt.update(prompt="a blue square", steps=4, batch_size=1)
    job_id = window.generate()
    assert job_id is not None
    row = window.queue.rows[job_id]
    assert row.title.text() == "txt2img: a blue square"
    assert row.preview.pixmap().isNull()
    fake_run.gate.set()
    qtbot.waitUntil(lambda: window.studio.jobs.jobs[job_id].state == "finished", timeout=10_000)
    view = window.studio.jobs.jobs[job_id]
    assert row.progress.value() == 1000 and "finished" in row.status.text()
    # the last preview the engine sent (step 4: red 48) is the one shown, scaled up
    preview = row.preview.pixmap().toImage()
    assert not preview.isNull() and preview.width() == 64
    colour = preview.pixelColor(32, 32)
    shown = (colour.red(), colour.green(), colour.blue())
    assert all(abs(a - b) <= 3 for a, b in zip(shown, (48, 90, 30), strict=True))  # sent as JPEG
    assert view.preview is not None
    assert not row.cancel.isEnabled()


def test_a_running_job_shows_its_preview_on_the_canvas_and_can_be_cancelled(
    window: Any, qtbot: Any, fake_run: Any
) -> None:
    window.studio.prompt.update(prompt="a green star", steps=50, batch_size=1)
    fake_run.hold_at = 5
    job_id = window.generate()
    assert job_id is not None
    qtbot.waitUntil(lambda: window.studio.jobs.jobs[job_id].fraction >= 4 / 50, timeout=10_000)
    assert window.canvas._preview.isVisible()
    frame = window.studio.frame
    assert (window.canvas._preview.pos().x(), window.canvas._preview.pos().y()) == (frame.x, frame.y)
    window.queue.rows[job_id].cancel.click()
    qtbot.waitUntil(lambda: window.studio.jobs.jobs[job_id].state == "cancelled", timeout=10_000)
    assert not window.canvas._preview.isVisible()
    assert window.studio.jobs.variants is None
    assert "cancelled" in window.queue.rows[job_id].status.text()


def _archive(prompts: list[str]) -> None:
    archive = Archive(Settings())
    for index, prompt in enumerate(prompts):
        recipe = GenerationRequest(prompt=prompt, seed=index, steps=11 + index, cfg_scale=6.5)
        archive.save(
            GeneratedImage(Image.new("RGB", (96, 96), (index * 60, 0, 0)), recipe, ModelInfo("demo"))
        )


def test_gallery_search_finds_a_picture_by_prompt_and_uses_its_recipe(window: Any, qtbot: Any) -> None:
    _archive(
        ["a red circle at the top left", "a blue square in the center", "a yellow star, black background"]
    )
    gallery = window.gallery
    window.tabs.setCurrentWidget(gallery)
    assert gallery.pictures.count() == 3  # all, newest first
    gallery.search.setText("blue square")
    qtbot.keyClick(gallery.search, "\r")
    assert gallery.pictures.count() == 1
    assert gallery.selected().prompt == "a blue square in the center"
    assert "a blue square in the center" in gallery.recipe.toPlainText()
    assert not gallery.pictures.item(0).icon().isNull()
    gallery.use.click()
    assert window.prompt.prompt.toPlainText() == "a blue square in the center"
    assert (window.prompt.steps.value(), window.prompt.cfg.value(), window.prompt.seed.value()) == (
        12,
        6.5,
        1,
    )
    gallery.add.click()
    added = window.studio.document.layers[-1]
    assert added.width == 96 and tuple(added.pixels[0, 0]) == (60, 0, 0, 255)
    gallery.search.setText("purple")
    gallery.refresh()
    assert gallery.pictures.count() == 0 and "0 picture(s)" in gallery.status.text()
