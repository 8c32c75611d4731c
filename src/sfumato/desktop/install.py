"""The Linux applications-menu entry: the .desktop file and icon shipped in the package, copied
into the user's XDG data folder."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

RESOURCES = Path(__file__).parent / "resources"


def _data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def _command() -> str:
    """What the entry runs: the standalone bundle's own executable, else the gui-script on the PATH."""
    if getattr(sys, "frozen", False):
        return '"' + sys.executable.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return "sfumato-studio"


def install_desktop_entry(data_home: Path | None = None) -> list[Path]:
    """Writes the entry and the icon; returns the files written."""
    home = data_home or _data_home()
    entry = home / "applications" / "sfumato-studio.desktop"
    icon = home / "icons" / "hicolor" / "scalable" / "apps" / "sfumato-studio.svg"
    icon.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(RESOURCES / "sfumato-studio.svg", icon)
    text = (RESOURCES / "sfumato-studio.desktop").read_text("utf-8")
    text = text.replace("Exec=sfumato-studio ", f"Exec={_command()} ")
    entry.parent.mkdir(parents=True, exist_ok=True)
    entry.write_text(text, "utf-8")
    return [entry, icon]
