"""The model catalog backed by Sfumato's model library (the configured model folders)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import cast

from sfumato.core.settings import Settings
from sfumato.server.catalog import Kind, ModelEntry

KINDS = ("checkpoint", "vae", "lora", "embedding", "upscaler")


class LibraryCatalog:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._entries: list[ModelEntry] | None = None

    def _scan(self) -> list[ModelEntry]:
        from sfumato.models.library import ModelLibrary

        entries = []
        for item in ModelLibrary(self.settings).entries():
            if item.kind not in KINDS:
                continue
            # Clients see names relative to the model folders, never the machine's paths.
            entries.append(
                ModelEntry(
                    name=item.name,
                    filename=item.name + item.path.suffix,
                    kind=cast(Kind, item.kind),
                    hash=item.hash,
                    sha256=item.sha256,
                    architecture=item.architecture or _upscaler_architecture(item.path, item.kind),
                    path=item.path,
                    pickled=_is_pickle(item.path),
                )
            )
        return entries

    def list(self, kind: Kind = "checkpoint") -> Sequence[ModelEntry]:
        if self._entries is None:
            self._entries = self._scan()
        return [e for e in self._entries if e.kind == kind]

    def refresh(self) -> None:
        self._entries = self._scan()


def _is_pickle(path: Path) -> bool:
    from sfumato.models.safety import FileFormat, sniff_format

    if path.is_dir():
        return False
    try:
        return sniff_format(path) in (FileFormat.PICKLE, FileFormat.ZIP_PICKLE)
    except OSError:
        return False


def _upscaler_architecture(path: Path, kind: str) -> str | None:
    """spandrel's name for an upscaler file's architecture, from its header ("unsafe" for a pickle)."""
    if kind != "upscaler":
        return None
    from sfumato.core.errors import SfumatoError, UnsafeModelFile
    from sfumato.models.upscalers import identify_upscaler

    try:
        return identify_upscaler(path)
    except UnsafeModelFile:
        return "unsafe"
    except SfumatoError:
        return None
