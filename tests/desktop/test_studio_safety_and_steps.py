"""Settings → NSFW filter and name blocklist, honoured by generation from the app; Layer → Upscale,
Restore faces and Detail on a layer (undoable)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from sfumato.core.settings import Settings
from sfumato.desktop.model.document import Layer
from sfumato.desktop.model.preferences import load_preferences
from sfumato.desktop.ui.commands import AddLayer
from sfumato.desktop.ui.settings_dialog import SettingsDialog

NAMES = "# people\nCaptain Stormwind | Капитан Штормвинд\n"


def blocklist(tmp_path: Path) -> Path:
    path = tmp_path / "characters.txt"
    path.write_text(NAMES, encoding="utf-8")
    return path


def settings_dialog(window: Any) -> SettingsDialog:
    dialog = SettingsDialog(window.settings, window.studio, window)
    return dialog


def accept(window: Any, dialog: SettingsDialog) -> None:
    """What Settings → OK does."""
    dialog.accept()
    window.apply_safety()


def test_the_nsfw_filter_chosen_in_settings_rides_in_every_request_and_is_kept(
    window: Any, fake_run: Any, qtbot: Any, monkeypatch: Any
) -> None:
    dialog = settings_dialog(window)
    qtbot.addWidget(dialog)
    assert dialog.nsfw.currentData() == "off"  # the settings' default
    dialog.nsfw.setCurrentIndex(dialog.nsfw.findData("blur"))
    accept(window, dialog)
    window.studio.prompt.update(prompt="a red circle", steps=1, batch_size=1)
    assert window.generate() is not None
    qtbot.waitUntil(lambda: len(fake_run.requests) == 1, timeout=10_000)
    assert fake_run.requests[0].nsfw_filter == "blur"
    assert load_preferences(window.settings).nsfw_filter == "blur"
    from sfumato.desktop.app import build_window

    again = build_window(Settings(), run=fake_run)  # the next start
    qtbot.addWidget(again)
    try:
        assert again.studio.request()[0].nsfw_filter == "blur"
    finally:
        again.bridge.stop()


def test_a_prompt_naming_a_blocklist_entry_is_refused_before_it_is_queued(
    window: Any, fake_run: Any, qtbot: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    from PySide6.QtWidgets import QFileDialog

    path = blocklist(tmp_path)
    dialog = settings_dialog(window)
    qtbot.addWidget(dialog)
    assert not dialog.blocklist_on.isChecked() and dialog.blocklist_files.count() == 0
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *args, **kwargs: (str(path), ""))
    dialog.add_blocklist.click()
    assert dialog.blocklist_on.isChecked() and dialog.note.text() == "characters.txt: 1 entries."
    accept(window, dialog)
    window.studio.prompt.update(prompt="portrait of (капитан штормвинд:1.2)", steps=1, batch_size=1)
    assert window.generate() is None
    message = window.statusBar().currentMessage()
    assert message.startswith(
        'Cannot generate: The prompt names "Captain Stormwind" (blocklist characters.txt'
    )
    assert window.studio.jobs.jobs == {} and fake_run.requests == []
    # the detailer draws with the prompt too
    window.undo.push(AddLayer(window.studio.document, Layer.from_image("photo", Image.new("RGB", (64, 64)))))
    window.studio.set_active(window.studio.document.layers[-1].id)
    assert not window.detail_layer()
    assert "Captain Stormwind" in window.statusBar().currentMessage()
    # turned off, the same prompt is drawn
    dialog = settings_dialog(window)
    qtbot.addWidget(dialog)
    assert dialog.blocklists() == [path]
    dialog.blocklist_on.setChecked(False)
    accept(window, dialog)
    assert window.generate() is not None
    qtbot.waitUntil(lambda: len(fake_run.requests) == 1, timeout=10_000)
    saved = load_preferences(window.settings)
    assert (saved.blocklists, saved.blocklist_on) == ([path], False)


def test_a_broken_blocklist_file_is_said_and_not_added(
    window: Any, qtbot: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    from PySide6.QtWidgets import QFileDialog

    broken = tmp_path / "broken.txt"
    broken.write_text("Jennifer Example | | J. Example\n", encoding="utf-8")
    dialog = settings_dialog(window)
    qtbot.addWidget(dialog)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *args, **kwargs: (str(broken), ""))
    dialog.add_blocklist.click()
    assert dialog.blocklist_files.count() == 0
    assert dialog.note.text().startswith(f"The blocklist {broken} cannot be read: line 1")


def test_the_blocklist_of_the_settings_turned_off_in_the_app_lets_the_real_engine_draw(
    qtbot: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    """The engine of this machine checks the settings' blocklists itself: the app's switch reaches it."""
    from sfumato.desktop.app import build_window
    from sfumato.jobs.local import RunnerRun

    path = blocklist(tmp_path)
    monkeypatch.setenv("SFUMATO_BLOCKLISTS", f'["{path}"]')
    window = build_window(Settings())
    qtbot.addWidget(window)
    try:
        assert isinstance(window.engine, RunnerRun) and window.studio.blocklists == [path]
        dialog = settings_dialog(window)
        qtbot.addWidget(dialog)
        assert dialog.blocklist_on.isChecked() and dialog.blocklists() == [path]
        dialog.blocklist_on.setChecked(False)
        accept(window, dialog)
        assert window.engine.settings.blocklists == []
        window.studio.prompt.update(prompt="captain stormwind, a red circle", steps=2, batch_size=1, seed=1)
        job_id = window.generate()
        assert job_id is not None
        view = window.studio.jobs.jobs[job_id]
        qtbot.waitUntil(lambda: view.state in ("finished", "failed"), timeout=120_000)
        assert view.state == "finished", view.message
        assert len(view.variants) == 1 and view.variants[0].path.is_file()
    finally:
        window.bridge.stop()


# post-processing a layer ------------------------------------------------------------------------


def photo_layer(window: Any) -> Layer:
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 255, (30, 40, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    pixels[:5, :5, 3] = 0  # a transparent corner
    layer = Layer.from_image("photo", Image.fromarray(pixels, "RGBA"), x=7, y=9)
    window.undo.push(AddLayer(window.studio.document, layer))
    window.studio.set_active(layer.id)
    return layer


def test_upscale_layer_enlarges_it_with_the_chosen_upscaler_and_undo_restores_it(
    window: Any, qtbot: Any
) -> None:
    layer = photo_layer(window)
    original = layer.pixels.copy()
    window.actions_by_name["upscale_layer"].trigger()
    qtbot.waitUntil(lambda: layer.width == 80, timeout=30_000)
    assert (layer.x, layer.y, layer.width, layer.height) == (7, 9, 80, 60)
    expected = Image.fromarray(original[..., :3], "RGB").resize((80, 60), Image.Resampling.LANCZOS)
    assert np.array_equal(layer.pixels[..., :3], np.asarray(expected))
    assert layer.pixels[0, 0, 3] < 20 and layer.pixels[40, 60, 3] == 255  # the transparency came along
    assert window.statusBar().currentMessage() == "Upscale: done (80×60)."
    window.undo.undo()
    assert np.array_equal(layer.pixels, original)
    # the built-in 2× model, chosen in the Models tab
    window.studio.upscaler = "2x-sfumato-demo"
    window.actions_by_name["upscale_layer"].trigger()
    qtbot.waitUntil(lambda: layer.width == 80, timeout=60_000)
    assert layer.height == 60 and not np.array_equal(layer.pixels[..., :3], np.asarray(expected))


def test_restore_faces_without_a_restorer_model_says_what_to_install(window: Any, qtbot: Any) -> None:
    layer = photo_layer(window)
    original = layer.pixels.copy()
    assert window.restore_faces_in_layer()
    qtbot.waitUntil(lambda: not window.layer_steps.busy, timeout=30_000)
    message = window.statusBar().currentMessage()
    assert message.startswith("Restore faces failed:") and "GFPGAN" in message
    assert np.array_equal(layer.pixels, original) and window.undo.count() == 1  # only the layer's adding


def test_the_steps_need_a_picture_layer(window: Any) -> None:
    assert not window.upscale_layer()
    assert window.statusBar().currentMessage() == "Upscale: choose a picture layer first."


def test_detail_faces_in_a_layer_makes_a_blurred_smiley_clear_with_the_built_in_model(
    window: Any, qtbot: Any
) -> None:
    from sfumato.demo import judge, world
    from sfumato.postprocess.detect import smiley_confidence

    smiley = world.SceneObject("smiley", "yellow", "center", "small")
    picture = world.render(
        world.Scene((smiley, world.SceneObject("square", "red", "top left", "small")), "blue")
    )
    left, top, right, bottom = world.object_box(smiley)
    area = (left - 4, top - 4, right + 4, bottom + 4)
    picture.paste(picture.crop(area).filter(ImageFilter.GaussianBlur(2)), area[:2])
    assert smiley_confidence(picture, world.object_box(smiley), "yellow") < 0.2
    layer = Layer.from_image("shapes", picture)
    window.undo.push(AddLayer(window.studio.document, layer))
    window.studio.set_active(layer.id)
    window.studio.prompt.update(
        prompt="a yellow smiley face in the center, blue background", seed=0, steps=15, denoising_strength=0.6
    )
    window.actions_by_name["detail_layer"].trigger()
    qtbot.waitUntil(lambda: not window.layer_steps.busy, timeout=180_000)
    assert window.statusBar().currentMessage().startswith("Detail: done (96×96)."), (
        window.statusBar().currentMessage()
    )
    detailed = layer.image().convert("RGB")
    assert smiley_confidence(detailed, world.object_box(smiley), "yellow") > 0.7
    assert sorted(o.shape for o in judge.judge(detailed).objects) == ["smiley", "square"]
    window.undo.undo()
    assert np.array_equal(np.asarray(layer.image().convert("RGB")), np.asarray(picture))
