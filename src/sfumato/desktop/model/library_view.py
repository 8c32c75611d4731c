"""The model library as the studio's browser shows it: every file by kind, what it was made for, and
whether it fits the checkpoint the frame uses (the same facts as `sfumato models list`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sfumato.core.settings import Settings
    from sfumato.models.compatibility import Compatibility
    from sfumato.models.library import ModelEntry

BUILTIN_MODEL = "sfumato-demo"  # models/loading.py's name for the built-in model (no engine import here)

# The browser's sections: the library's kind, and the words on the tab.
KINDS: tuple[tuple[str, str], ...] = (
    ("checkpoint", "Checkpoints"),
    ("vae", "VAEs"),
    ("lora", "LoRAs"),
    ("embedding", "Embeddings"),
    ("upscaler", "Upscalers"),
)


@dataclass(frozen=True)
class LibraryItem:
    name: str
    kind: str
    made_for: str  # the architecture, or for a LoRA / embedding the family it was trained for
    size: int
    hash: str | None = None
    fits: tuple[str, ...] | None = None  # checkpoints a LoRA / embedding fits; None = not told
    problem: str = ""  # why its file could not be read

    def fits_model(self, model: str | None) -> bool | None:
        """Whether it fits ``model`` (None = the built-in one); None when that cannot be told."""
        if self.fits is None or self.problem:
            return None
        return (model or BUILTIN_MODEL) in self.fits

    def fit_words(self, model: str | None) -> str:
        fit = self.fits_model(model)
        if self.problem:
            return f"unreadable: {self.problem}"
        if fit is None:
            return ""
        shown = model or BUILTIN_MODEL
        return f"fits {shown}" if fit else f"does not fit {shown} (made for {self.made_for})"


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB"):
        if value < 1024:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def library_items(entries: list[ModelEntry], fit: list[Compatibility]) -> list[LibraryItem]:
    """Entries of the browser's kinds, with what ``compatibility`` found for LoRAs and embeddings."""
    found = {(c.kind, c.name): c for c in fit}
    wanted = {kind for kind, _ in KINDS}
    items = []
    for entry in entries:
        if entry.kind not in wanted:
            continue
        compatible = found.get((entry.kind, entry.name))
        made_for = entry.architecture or (compatible.family if compatible else "") or "?"
        items.append(
            LibraryItem(
                entry.name,
                entry.kind,
                made_for,
                entry.size,
                entry.hash,
                compatible.models if compatible else None,
                compatible.problem if compatible else "",
            )
        )
    return items


def read_library(settings: Settings, hash: bool = False) -> list[LibraryItem]:
    """The library's files, identified from their headers (cached), with their compatibility."""
    from sfumato.models.compatibility import compatibility
    from sfumato.models.library import ModelLibrary

    entries = ModelLibrary(settings).entries(identify=True, hash=hash)
    return library_items(entries, compatibility(entries))


def prompt_tag(item: LibraryItem, weight: float = 1.0) -> str:
    """What the prompt gets for a LoRA (its A1111 tag) or an embedding (its name, as a word)."""
    if item.kind == "lora":
        return f"<lora:{item.name}:{weight:g}>"
    return item.name


def insert_tag(text: str, cursor: int, tag: str) -> tuple[str, int]:
    """``tag`` written at ``cursor`` with a comma between it and the words around; the new cursor."""
    before, after = text[:cursor].rstrip(), text[cursor:].lstrip()
    if before.endswith(","):
        before += " "
    elif before and not before.endswith(("(", "[")):
        before += ", "
    if after and not after.startswith((",", ")", "]")):
        after = ", " + after
    return before + tag + after, len(before) + len(tag)
