"""The studio's own choices, kept in ``<data_dir>/studio.json``: the model, the output folder, the
device and how the model runs on it (precision, VRAM mode, compiled UNet), a remote server, the NSFW
filter and the name blocklists, applied over the settings at start (the model and the safety choices
also at once)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from sfumato.core.settings import Settings


class Preferences(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str | None = None  # a checkpoint's name as the model library lists it; None = built-in
    output_dir: Path | None = None
    device: str | None = None
    precision: Literal["auto", "fp32", "fp16", "bf16"] | None = None  # None = the settings' own
    vram_mode: Literal["normal", "medvram", "lowvram"] | None = None
    compile_unet: bool | None = None
    frame_side: int | None = None
    remote_url: str | None = None  # another machine's `sfumato serve`; None = the engine in this process
    remote_token: str | None = None
    nsfw_filter: Literal["off", "blur", "withhold"] | None = None  # None = the settings' nsfw_filter
    blocklists: list[Path] | None = None  # None = the settings' blocklists
    blocklist_on: bool = True  # refuse prompts naming an entry of the blocklists


def preferences_path(settings: Settings) -> Path:
    return settings.data_dir / "studio.json"


def load_preferences(settings: Settings) -> Preferences:
    """The saved preferences; none when the file is missing or unreadable (the studio still starts)."""
    try:
        return Preferences.model_validate_json(preferences_path(settings).read_bytes())
    except (OSError, ValidationError, ValueError):
        return Preferences()


def save_preferences(settings: Settings, preferences: Preferences) -> None:
    path = preferences_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".studio", suffix=".json")
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        json.dump(preferences.model_dump(mode="json"), file, indent=1)
    Path(temporary).replace(path)


def apply_preferences(settings: Settings, preferences: Preferences) -> Settings:
    changes: dict[str, object] = {}
    if preferences.output_dir is not None:
        changes["output_dir"] = preferences.output_dir
    if preferences.device:
        changes["device"] = preferences.device
    for name in ("precision", "vram_mode", "compile_unet"):
        if getattr(preferences, name) is not None:
            changes[name] = getattr(preferences, name)
    if preferences.nsfw_filter is not None:
        changes["nsfw_filter"] = preferences.nsfw_filter
    if preferences.blocklists is not None:
        changes["blocklists"] = preferences.blocklists
    if not preferences.blocklist_on:
        changes["blocklists"] = []
    return settings.model_copy(update=changes) if changes else settings
