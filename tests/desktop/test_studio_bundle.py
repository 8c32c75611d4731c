"""What a standalone bundle is checked with: `sfumato-studio --help` and `--smoke-test` (one picture made
with the built-in model through the app's own window), and the PyInstaller recipe's shape."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from PIL import Image

ROOT = Path(__file__).parents[2]


def test_help_says_how_to_start_and_check_the_app(capsys: Any) -> None:
    from sfumato.desktop.app import main

    assert main(["sfumato-studio", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: sfumato-studio [FILE ...]") and "--smoke-test" in out


def test_the_smoke_test_makes_a_picture_with_the_built_in_model(capsys: Any, qtbot: Any) -> None:
    from sfumato.demo import judge
    from sfumato.desktop.app import main

    assert main(["sfumato-studio", "--smoke-test"]) == 0
    out = capsys.readouterr().out.strip()
    match = re.fullmatch(r"smoke test: job finished (\S+\.png)", out)
    assert match, out
    with Image.open(match.group(1)) as picture:
        assert picture.size == (96, 96)
        seen = judge.judge(picture.convert("RGB"))
    # "a red circle at the top left on a white background", as the judge reads it
    assert seen.background == "white", seen
    assert any(o.colour == "red" and o.position == "top left" for o in seen.objects), seen


def test_the_pyinstaller_recipe_builds_a_windowed_app_from_the_gui_entry_point() -> None:
    spec = (ROOT / "packaging" / "sfumato-studio.spec").read_text()
    assert "console=False" in spec and 'name="sfumato-studio"' in spec
    entry = ROOT / "packaging" / "sfumato_studio_main.py"
    assert entry.name in spec and "from sfumato.desktop.app import main" in entry.read_text()
    assert '"torchvision"' in spec  # excluded: it must never be in a Sfumato install


def test_the_bundle_adds_itself_to_the_applications_menu(
    tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    import configparser
    import sys

    from sfumato.desktop.app import main

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", "/opt/Sfumato Studio/sfumato-studio")
    assert main(["sfumato-studio", "--install-desktop-entry"]) == 0
    entry = tmp_path / "applications" / "sfumato-studio.desktop"
    assert f"Wrote {entry}" in capsys.readouterr().out
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(entry)
    section = parser["Desktop Entry"]
    assert section["Exec"] == '"/opt/Sfumato Studio/sfumato-studio" %F' and section["Terminal"] == "false"
    assert (tmp_path / "icons" / "hicolor" / "scalable" / "apps" / "sfumato-studio.svg").is_file()
