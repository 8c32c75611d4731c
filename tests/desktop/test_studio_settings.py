"""Settings: the model switcher with AutoV2 hashes, the output folder and device, kept for next time."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from sfumato.core.settings import Settings
from sfumato.desktop.model.preferences import load_preferences
from sfumato.desktop.model.studio import Studio
from sfumato.desktop.ui.settings_dialog import BUILT_IN, SettingsDialog


def test_the_model_switcher_lists_checkpoints_with_autov2_hashes_and_remembers_the_choice(
    qtbot: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    root = tmp_path / "webui"
    checkpoint = root / "models" / "Stable-diffusion" / "tiny.safetensors"
    checkpoint.parent.mkdir(parents=True)
    save_file({"weight": torch.zeros(4)}, str(checkpoint))
    autov2 = hashlib.sha256(checkpoint.read_bytes()).hexdigest()[:10]
    monkeypatch.setenv("SFUMATO_MODEL_FOLDERS", f'["{root}"]')
    settings = Settings()
    studio = Studio(settings.outputs)
    dialog = SettingsDialog(settings, studio)
    qtbot.addWidget(dialog)
    titles = [dialog.model.itemText(i) for i in range(dialog.model.count())]
    assert titles == [BUILT_IN, "tiny"]
    dialog.hash_button.click()
    qtbot.waitUntil(
        lambda: dialog.model.count() == 2 and dialog.model.itemText(1) == f"tiny [{autov2}]", timeout=10_000
    )
    dialog.model.setCurrentIndex(1)
    dialog.output.setText(str(tmp_path / "pictures"))
    dialog.device.setCurrentText("cpu")
    dialog.accept()
    assert studio.prompt.model == "tiny"
    assert studio.prompt.request_fields()["model"] == "tiny"
    assert studio.frame.width == 512  # an SD checkpoint's size, not the built-in model's 96
    saved = load_preferences(settings)
    assert (saved.model, saved.output_dir, saved.device) == ("tiny", tmp_path / "pictures", "cpu")


def test_preferences_apply_when_the_studio_starts(qtbot: Any, tmp_path: Path, fake_run: Any) -> None:
    from sfumato.desktop.app import build_window
    from sfumato.desktop.model.preferences import Preferences, save_preferences

    settings = Settings()
    save_preferences(settings, Preferences(model="tiny", output_dir=tmp_path / "out", frame_side=512))
    window = build_window(settings, run=fake_run)
    qtbot.addWidget(window)
    try:
        assert window.studio.prompt.model == "tiny"
        assert (window.studio.frame.width, window.studio.frame.height) == (512, 512)
        assert window.settings.outputs == tmp_path / "out" and window.studio.outputs == tmp_path / "out"
    finally:
        window.bridge.stop()


def test_a_model_folder_added_in_settings_lists_its_checkpoints(
    qtbot: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    from PySide6.QtWidgets import QFileDialog

    comfy = tmp_path / "ComfyUI"
    (comfy / "models" / "checkpoints").mkdir(parents=True)
    save_file({"weight": torch.zeros(2)}, str(comfy / "models" / "checkpoints" / "dreamy.safetensors"))
    settings = Settings()
    dialog = SettingsDialog(settings, Studio(settings.outputs))
    qtbot.addWidget(dialog)
    assert dialog.model.count() == 1
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args: str(comfy))
    dialog.add_folder.click()
    assert [dialog.model.itemText(i) for i in range(dialog.model.count())] == [BUILT_IN, "dreamy"]


def test_precision_vram_mode_and_compiling_are_chosen_in_settings_and_run_at_the_next_start(
    qtbot: Any, fake_run: Any
) -> None:
    from sfumato.desktop.app import build_window

    settings = Settings()
    dialog = SettingsDialog(settings, Studio(settings.outputs))
    qtbot.addWidget(dialog)
    assert (dialog.precision.currentData(), dialog.vram_mode.currentData()) == ("auto", "normal")
    assert not dialog.compile_unet.isChecked()
    dialog.precision.setCurrentIndex(dialog.precision.findData("bf16"))
    dialog.vram_mode.setCurrentIndex(dialog.vram_mode.findData("lowvram"))
    dialog.compile_unet.setChecked(True)
    dialog.accept()
    window = build_window(Settings(), run=fake_run)
    qtbot.addWidget(window)
    try:
        started = window.settings
        assert (started.precision, started.vram_mode, started.compile_unet) == ("bf16", "lowvram", True)
    finally:
        window.bridge.stop()
    again = SettingsDialog(started, Studio(started.outputs))
    qtbot.addWidget(again)
    assert (again.precision.currentData(), again.vram_mode.currentData()) == ("bf16", "lowvram")
    assert again.compile_unet.isChecked()
