"""How the studio is started: `sfumato studio`, the gui-script, the Linux menu entry."""

from __future__ import annotations

import configparser
import tomllib
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).parents[2]


def test_sfumato_studio_is_a_sub_command() -> None:
    from sfumato.cli.main import app

    result = CliRunner().invoke(app, ["studio", "--help"])
    assert result.exit_code == 0 and "canvas app" in result.output


def test_the_gui_script_points_at_the_apps_main() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    target = project["project"]["gui-scripts"]["sfumato-studio"]
    module, _, name = target.partition(":")
    import importlib

    assert callable(getattr(importlib.import_module(module), name))


def test_the_app_opens_the_files_it_is_given_and_shows_the_window(
    qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    from sfumato.desktop import app as studio_app

    monkeypatch.setattr(studio_app, "import_engine", lambda: 0.0)  # the engine is not needed here
    picture = tmp_path / "start.png"
    Image.new("RGB", (40, 30), (9, 8, 7)).save(picture)
    window = studio_app.open_studio([str(picture)])
    assert window is not None
    qtbot.addWidget(window)
    try:
        assert window.isVisible() and window.windowTitle() == "Sfumato Studio"
        layers = window.studio.document.layers
        assert [(layer.name, layer.width, layer.height) for layer in layers] == [("start", 40, 30)]
    finally:
        window.bridge.stop()


def test_the_desktop_entry_and_icon_are_installed_for_the_menu(tmp_path: Path) -> None:
    from sfumato.desktop.install import install_desktop_entry

    entry, icon = install_desktop_entry(tmp_path)
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(entry)
    section = parser["Desktop Entry"]
    assert section["Exec"].startswith("sfumato-studio") and section["Terminal"] == "false"
    assert section["Icon"] == "sfumato-studio" and icon.name == "sfumato-studio.svg"
    assert icon.read_text().lstrip().startswith("<?xml") and "<svg" in icon.read_text()
