"""The Linux applications-menu entry: the .desktop file and icon shipped in the package, copied
into the user's XDG data folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

RESOURCES = Path(__file__).parent / "resources"


def _data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def install_desktop_entry(data_home: Path | None = None) -> list[Path]:
    """Writes the entry and the icon; returns the files written."""
    home = data_home or _data_home()
    entry = home / "applications" / "sfumato-studio.desktop"
    icon = home / "icons" / "hicolor" / "scalable" / "apps" / "sfumato-studio.svg"
    for source, target in (
        (RESOURCES / "sfumato-studio.desktop", entry),
        (RESOURCES / "sfumato-studio.svg", icon),
    ):
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return [entry, icon]
