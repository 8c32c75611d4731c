"""Where the server finds A1111's ``styles.csv``: Sfumato's data folder, then beside each model folder's
A1111 tree (the webui root holds it; a configured folder may be the root, its ``models/`` or a kind folder)."""

from __future__ import annotations

from pathlib import Path

from sfumato.core.settings import Settings
from sfumato.prompts.styles import PromptStyle, styles_in

STYLES_FILE = "styles.csv"


def style_files(settings: Settings) -> list[Path]:
    from sfumato.models.library import ModelLibrary

    roots: list[Path] = [settings.data_dir]
    for folder in ModelLibrary(settings).folders():
        roots.append(folder)
        if folder.name == "models":
            roots.append(folder.parent)
        elif folder.parent.name == "models":
            roots.append(folder.parent.parent)
    files: list[Path] = []
    for root in roots:
        path = root / STYLES_FILE
        if path not in files:
            files.append(path)
    return files


def server_styles(settings: Settings) -> list[PromptStyle]:
    return styles_in(style_files(settings))
