"""What models the server can offer, by name: checkpoints, VAEs, LoRAs, embeddings.

Clients only ever pick from these listings; a client string is never used as a path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from sfumato.core.errors import InvalidRequest, ModelNotFound

Kind = Literal["checkpoint", "vae", "lora", "embedding", "restorer", "upscaler"]


@dataclass(frozen=True)
class ModelEntry:
    name: str  # the file's stem, as A1111 calls it ("model_name")
    filename: str  # relative to its model folder
    kind: Kind = "checkpoint"
    hash: str | None = None  # AutoV2: the first 10 hex digits of the SHA-256
    sha256: str | None = None
    architecture: str | None = None
    # Where the file is, for the server's own reading (never shown to clients); None for listed-only models.
    path: Path | None = field(default=None, compare=False)
    pickled: bool = False  # a pickle (.ckpt/.pt): never opened unless converted to safetensors

    @property
    def title(self) -> str:
        """A1111's checkpoint title: 'name.safetensors [hash]'."""
        return f"{self.filename} [{self.hash}]" if self.hash else self.filename


class ModelCatalog(Protocol):
    def list(self, kind: Kind = "checkpoint") -> Sequence[ModelEntry]: ...

    def refresh(self) -> None: ...


@dataclass
class StaticCatalog:
    """A fixed listing (tests, or a server given its models explicitly)."""

    entries: list[ModelEntry] = field(default_factory=list)

    def list(self, kind: Kind = "checkpoint") -> Sequence[ModelEntry]:
        return [e for e in self.entries if e.kind == kind]

    def refresh(self) -> None:
        return None


def usable(entries: Sequence[ModelEntry]) -> list[ModelEntry]:
    """The entries a client may pick: pickles are left out until converted, as they cannot be loaded."""
    return [entry for entry in entries if not entry.pickled]


def find(catalog: ModelCatalog, name: str, kind: Kind = "checkpoint") -> ModelEntry:
    """By title, file name, stem, full or short hash — only among listed entries."""
    entry = _find(catalog, name, kind)
    if entry.pickled:
        raise InvalidRequest(
            f"The {kind} {entry.filename} is a pickle, which Sfumato does not open (it could run hidden code).",
            f"If you trust it, convert it once with `sfumato models convert {entry.filename}` and refresh.",
        )
    return entry


def _find(catalog: ModelCatalog, name: str, kind: Kind) -> ModelEntry:
    wanted = name.strip()
    entries = catalog.list(kind)
    for entry in entries:
        keys = {
            entry.title,
            entry.filename,
            entry.name,
            entry.filename.rsplit("/", 1)[-1],
            f"{entry.name} [{entry.hash}]",
        }
        keys |= {h for h in (entry.hash, entry.sha256) if h}
        if wanted in keys or wanted.lower() in {k.lower() for k in keys}:
            return entry
    known = ", ".join(e.name for e in usable(entries)[:10]) or "none"
    shown = wanted if len(wanted) <= 80 else wanted[:77] + "..."
    raise ModelNotFound(
        f"There is no {kind} named {shown!r} (known: {known}).",
        "Refresh the model list or put the file in a model folder.",
    )
