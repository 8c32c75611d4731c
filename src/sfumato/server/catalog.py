"""What models the server can offer, by name: checkpoints, VAEs, LoRAs, embeddings.

Clients only ever pick from these listings; a client string is never used as a path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from sfumato.core.errors import ModelNotFound

Kind = Literal["checkpoint", "vae", "lora", "embedding", "upscaler"]


@dataclass(frozen=True)
class ModelEntry:
    name: str  # the file's stem, as A1111 calls it ("model_name")
    filename: str  # relative to its model folder
    kind: Kind = "checkpoint"
    hash: str | None = None  # AutoV2: the first 10 hex digits of the SHA-256
    sha256: str | None = None
    architecture: str | None = None

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


def find(catalog: ModelCatalog, name: str, kind: Kind = "checkpoint") -> ModelEntry:
    """By title, file name, stem, full or short hash — only among listed entries."""
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
    known = ", ".join(e.name for e in entries[:10]) or "none"
    shown = wanted if len(wanted) <= 80 else wanted[:77] + "..."
    raise ModelNotFound(
        f"There is no {kind} named {shown!r} (known: {known}).",
        "Refresh the model list or put the file in a model folder.",
    )
